//! Which instruction set the CPU engine's kernels use, chosen at run time.
//!
//! One binary runs everywhere: the kernels are compiled for each ISA with
//! `#[target_feature]`, and the best one the CPU supports is picked when the engine
//! starts. `TANDEM_ISA` (`avx512`, `avxvnni`, `avx2`, `portable`) forces a slower path,
//! for measurements and for tests that compare every path with the portable one.

use std::fmt;
use std::sync::OnceLock;

/// An instruction set the kernels are compiled for, fastest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// AVX-512 (F, BW, VL) with VNNI: `vpdpbusd` on 512-bit vectors.
    Avx512Vnni,
    /// AVX2 with AVX-VNNI: `vpdpbusd` on 256-bit vectors (Alder Lake and later, Zen 5).
    AvxVnni,
    /// AVX2 with FMA and F16C: int8 products through `maddubs`/`madd`.
    Avx2,
    /// Plain Rust, any CPU.
    Portable,
}

impl Isa {
    pub const ALL: [Isa; 4] = [Isa::Avx512Vnni, Isa::AvxVnni, Isa::Avx2, Isa::Portable];

    pub fn name(self) -> &'static str {
        match self {
            Self::Avx512Vnni => "avx512-vnni",
            Self::AvxVnni => "avx-vnni",
            Self::Avx2 => "avx2",
            Self::Portable => "portable",
        }
    }

    /// Whether this CPU can run the path.
    pub fn supported(self) -> bool {
        static SUPPORT: OnceLock<[bool; 4]> = OnceLock::new();
        let support = SUPPORT.get_or_init(|| Self::ALL.map(Self::detect));
        support[self as usize]
    }

    fn detect(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2 = has!("avx2") && has!("fma") && has!("f16c");
            match self {
                Self::Avx512Vnni => {
                    avx2 && has!("avx512f")
                        && has!("avx512bw")
                        && has!("avx512vl")
                        && has!("avx512vnni")
                }
                Self::AvxVnni => avx2 && has!("avxvnni"),
                Self::Avx2 => avx2,
                Self::Portable => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Self::Portable
        }
    }

    /// Every path this CPU can run, fastest first.
    pub fn available() -> Vec<Isa> {
        Self::ALL.into_iter().filter(|i| i.supported()).collect()
    }

    /// The path the engine uses: `TANDEM_ISA` if set (and supported), else the fastest.
    pub fn selected() -> Isa {
        static SELECTED: OnceLock<Isa> = OnceLock::new();
        *SELECTED.get_or_init(|| {
            let best = Self::available()[0];
            match std::env::var("TANDEM_ISA") {
                Ok(name) if !name.is_empty() => match name.parse::<Isa>() {
                    Ok(isa) if isa.supported() => isa,
                    Ok(isa) => {
                        eprintln!(
                            "tandem: TANDEM_ISA={name}: this CPU cannot run {isa}; using {best}"
                        );
                        best
                    }
                    Err(e) => {
                        eprintln!("tandem: TANDEM_ISA: {e}; using {best}");
                        best
                    }
                },
                _ => best,
            }
        })
    }

    /// Panics unless the CPU supports this path: the kernels' safety rests on it.
    #[inline]
    pub(crate) fn assert_supported(self) {
        assert!(self.supported(), "this CPU cannot run the {self} kernels");
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Isa {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "avx512" | "avx512-vnni" | "avx512vnni" => Ok(Self::Avx512Vnni),
            "avxvnni" | "avx-vnni" => Ok(Self::AvxVnni),
            "avx2" => Ok(Self::Avx2),
            "portable" => Ok(Self::Portable),
            other => Err(format!(
                "unknown instruction set `{other}` (expected avx512, avxvnni, avx2 or portable)"
            )),
        }
    }
}

/// Defines `pub fn $name(isa: Isa, args…)` running `$body(args…)` compiled for the
/// chosen ISA: the row operations are plain Rust written to vectorise, and this gives
/// each ISA its own machine code. The body does the same float operations in the same
/// order whatever the vector width (fixed lane counts, no `mul_add`), so every path
/// gives the same bits.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:path) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name(isa: $crate::cpu::isa::Isa, $($arg: $ty),*) $(-> $ret)? {
            isa.assert_supported();
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn wide($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma,f16c")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn narrow($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                match isa {
                    // SAFETY: `assert_supported` checked the CPU has these features.
                    $crate::cpu::isa::Isa::Avx512Vnni => return unsafe { wide($($arg),*) },
                    $crate::cpu::isa::Isa::AvxVnni | $crate::cpu::isa::Isa::Avx2 => {
                        return unsafe { narrow($($arg),*) }
                    }
                    $crate::cpu::isa::Isa::Portable => {}
                }
            }
            $body($($arg),*)
        }
    };
}
pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_is_always_there_and_names_parse_back() {
        assert!(Isa::Portable.supported());
        assert_eq!(*Isa::available().last().unwrap(), Isa::Portable);
        for isa in Isa::ALL {
            assert_eq!(isa.name().parse::<Isa>().unwrap(), isa);
        }
        assert!("sse".parse::<Isa>().unwrap_err().contains("sse"));
        assert!(Isa::selected().supported());
    }
}

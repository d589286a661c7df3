// Numbers as people read them.

const BYTE_UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** 1536 → "1.5 KB"; decimal units, as disks and download pages use. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes == null || !Number.isFinite(bytes)) return '—';
  if (bytes < 0) return '-' + formatBytes(-bytes);
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < BYTE_UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${trimZeros(value.toFixed(digits))} ${BYTE_UNITS[unit]}`;
}

/**
 * Memory (RAM, GPU memory) as operating systems show it: binary units, so a 16 GiB
 * machine reads "16 GB" as its owner knows it.
 */
export function formatMemory(bytes: number | null | undefined): string {
  if (bytes == null || !Number.isFinite(bytes)) return '—';
  const gib = bytes / 1024 ** 3;
  if (gib >= 1) return `${trimZeros(gib.toFixed(gib >= 10 ? 0 : 1))} GB`;
  return `${Math.round(bytes / 1024 ** 2)} MB`;
}

/** Bytes per second → "12.5 MB/s". */
export function formatRate(bytesPerSec: number | null | undefined): string {
  if (bytesPerSec == null || !Number.isFinite(bytesPerSec)) return '—';
  return `${formatBytes(bytesPerSec)}/s`;
}

/** Seconds → "42 s", "3 min 5 s", "1 h 2 min". */
export function formatEta(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) {
    const rest = s % 60;
    return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
  }
  const hours = Math.floor(minutes / 60);
  const restMin = minutes % 60;
  return restMin ? `${hours} h ${restMin} min` : `${hours} h`;
}

/** Milliseconds → "850 ms", "2.4 s", "1 min 3 s". */
export function formatMs(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return '—';
  if (ms < 1) return `${trimZeros(ms.toFixed(2))} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${trimZeros((ms / 1000).toFixed(1))} s`;
  return formatEta(ms / 1000);
}

/** 0.734 → "73%". */
export function formatPercent(fraction: number | null | undefined, digits = 0): string {
  if (fraction == null || !Number.isFinite(fraction)) return '—';
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** A speed in tokens per second. */
export function formatTokensPerSecond(tps: number | null | undefined): string {
  if (tps == null || !Number.isFinite(tps)) return '—';
  return `${tps >= 100 ? Math.round(tps) : trimZeros(tps.toFixed(1))} tok/s`;
}

/** 2.049 → "2.05×". */
export function formatSpeedup(ratio: number | null | undefined): string {
  if (ratio == null || !Number.isFinite(ratio)) return '—';
  return `${ratio.toFixed(2)}×`;
}

/** 1_543_714_304 → "1.5B"; 134_515_008 → "135M". */
export function formatParams(params: number): string {
  // 999.9M reads as 1B (Gemma 3 1B has 999 885 952), not 1000M.
  if (params >= 0.9995e9) return `${trimZeros((params / 1e9).toFixed(1))}B`;
  if (params >= 1e6) return `${Math.round(params / 1e6)}M`;
  if (params >= 1e3) return `${Math.round(params / 1e3)}K`;
  return String(params);
}

/** A fixed number of decimals without trailing zeros: 2.50 → "2.5". */
export function formatNumber(value: number | null | undefined, digits = 2): string {
  if (value == null || !Number.isFinite(value)) return '—';
  return trimZeros(value.toFixed(digits));
}

/** RFC 3339 → "12 Mar 2026, 14:05" in the user's locale-neutral short form. */
export function formatDate(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getDate()} ${months[d.getMonth()]} ${d.getFullYear()}, ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** "Qwen/Qwen2.5-0.5B-Instruct" → "Qwen2.5-0.5B-Instruct". */
export function shortRepo(repo: string): string {
  const slash = repo.lastIndexOf('/');
  return slash >= 0 ? repo.slice(slash + 1) : repo;
}

/** Shortens text to `max` characters with an ellipsis, on one line. */
export function ellipsize(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : line.slice(0, Math.max(0, max - 1)).trimEnd() + '…';
}

function trimZeros(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

//! Tandem's desktop app: a Tauri 2 window showing the web UI in `ui/`, with commands over
//! the engine (models, runs, races, history, export), the hub (downloads) and the pair
//! catalog and doctor. The IPC contract is `ui/src/ipc.ts`, described in docs/ipc.md.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod convert;
mod error;
mod hardware;
mod ipc;
mod state;

use std::sync::Arc;

fn main() {
    let state = match state::AppState::from_env() {
        Ok(state) => state,
        Err(error) => {
            eprintln!("Tandem cannot start: {}", error.message);
            std::process::exit(1);
        }
    };
    tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .manage(Arc::new(state))
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::catalog,
            commands::local_models,
            commands::local_files,
            commands::pick_model_file,
            commands::download_model,
            commands::cancel_download,
            commands::delete_model,
            commands::set_hub_token,
            commands::doctor_pair,
            commands::add_custom_pair,
            commands::remove_custom_pair,
            commands::load_pair,
            commands::loaded_pair,
            commands::chat_template_info,
            commands::start_run,
            commands::start_compare,
            commands::cancel_run,
            commands::list_history,
            commands::get_history_entry,
            commands::delete_history_entry,
            commands::export_log,
        ])
        .run(tauri::generate_context!())
        .unwrap_or_else(|error| {
            eprintln!("Tandem stopped: {error}");
            std::process::exit(1);
        });
}

//! `/admin/plugins`: the WebAssembly plugins' state, calls and errors, with enable, disable and
//! reload, for site administrators (everyone else gets the 404 page).

use std::sync::Arc;

use askama::Template;
use poem::http::{Method, StatusCode};
use poem::{Request, Response};
use serde::Deserialize;
use thub_plugin_sdk::{ApiError, WasmPluginState};

use crate::Web;
use crate::forms::FormErrors;
use crate::frame::{Frame, encode_component};
use crate::views::minute;

struct PluginRow {
    id: String,
    version: String,
    enabled: bool,
    problem: String,
    routes: Vec<String>,
    calls: u64,
    errors: u64,
    mean_ms: String,
    loaded: String,
}

impl From<WasmPluginState> for PluginRow {
    fn from(state: WasmPluginState) -> Self {
        Self {
            id: state.id,
            version: state.version,
            enabled: state.enabled,
            problem: state.problem.unwrap_or_default(),
            routes: state.routes,
            calls: state.calls,
            errors: state.errors,
            mean_ms: format!("{:.1}", state.mean_ms),
            loaded: state.loaded_at.map(minute).unwrap_or_else(|| "not loaded".to_owned()),
        }
    }
}

#[derive(Template)]
#[template(path = "admin_plugins.html")]
struct PluginsPage<'a> {
    frame: &'a Frame,
    runtime_on: bool,
    rows: Vec<PluginRow>,
    errors: FormErrors,
    notice: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PluginForm {
    id: String,
    /// `enable`, `disable` or `reload`.
    action: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DoneQuery {
    done: String,
    id: String,
}

/// `GET|POST /admin/plugins`.
pub(crate) async fn plugins(web: Arc<Web>, mut request: Request) -> Response {
    let frame = match Frame::new(&web, &request).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    if frame.principal.is_none() {
        return frame.redirect(&frame.login_link());
    }
    if !frame.is_admin() {
        return frame.not_found();
    }
    let admin = web.plugin_admin.as_ref().and_then(|slot| slot.get().cloned());
    if *request.method() == Method::POST {
        let form: PluginForm = match frame.read_form(&mut request).await {
            Ok(form) => form,
            Err(response) => return response,
        };
        let Some(admin) = admin.clone() else {
            return frame.error(&ApiError::unavailable("plugins.off", "WebAssembly plugins are switched off"));
        };
        let result = match form.action.as_str() {
            "enable" => admin.set_enabled(&form.id, true).await,
            "disable" => admin.set_enabled(&form.id, false).await,
            "reload" => admin.reload(&form.id).await,
            _ => Err(ApiError::bad_request("web.bad_form", "Unknown action")),
        };
        return match result {
            Ok(()) => frame.redirect(&format!(
                "/admin/plugins?done={}&id={}",
                encode_component(&form.action),
                encode_component(&form.id)
            )),
            Err(error) if error.status().is_client_error() => {
                let rows = admin.plugins().into_iter().map(PluginRow::from).collect();
                let page = PluginsPage {
                    frame: &frame,
                    runtime_on: true,
                    rows,
                    errors: FormErrors::from_error(&error, &[]),
                    notice: None,
                };
                frame.render(&page, error.status())
            }
            Err(error) => frame.error(&error),
        };
    }
    let done = request.params::<DoneQuery>().unwrap_or_default();
    let notice = match done.done.as_str() {
        "enable" => Some(format!("{} is enabled.", done.id)),
        "disable" => Some(format!("{} is disabled.", done.id)),
        "reload" => Some(format!("{} is reloaded.", done.id)),
        _ => None,
    };
    let rows =
        admin.as_ref().map(|admin| admin.plugins().into_iter().map(PluginRow::from).collect()).unwrap_or_default();
    let page = PluginsPage { frame: &frame, runtime_on: admin.is_some(), rows, errors: FormErrors::default(), notice };
    frame.render(&page, StatusCode::OK)
}

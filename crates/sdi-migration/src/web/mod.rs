//! The web view at `/`: one page of hand-written HTML, CSS and JavaScript,
//! embedded in the binary (no build step, no CDN, works offline). It reads
//! `GET /api/v1/stream` and calls `DELETE /api/v1/migrations/{id}`.

pub mod nodes;

use axum::http::header;
use axum::response::{IntoResponse, Response};

pub const INDEX_HTML: &str = include_str!("index.html");
pub const APP_CSS: &str = include_str!("app.css");
pub const APP_JS: &str = include_str!("app.js");

/// Bytes a browser downloads for the page (uncompressed, before any data).
pub const PAGE_WEIGHT: usize = INDEX_HTML.len() + APP_CSS.len() + APP_JS.len();
/// The page's budget (stated in the README); the build fails beyond it.
pub const PAGE_BUDGET: usize = 48 * 1024;
const _: () = assert!(PAGE_WEIGHT <= PAGE_BUDGET, "the web page is over its 48 KiB budget");

/// The page's own scripts, styles and calls only: nothing from elsewhere runs.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Small, and must match the binary serving it: always revalidate.
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

pub async fn style() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_assets() {
        for text in [INDEX_HTML, APP_CSS, APP_JS] {
            assert!(!text.contains("http://") && !text.contains("https://"), "no outside URL in the page's assets");
        }
        assert!(INDEX_HTML.contains(r#"src="/ui/app.js""#) && INDEX_HTML.contains(r#"href="/ui/app.css""#));
        assert!(APP_JS.contains("/api/v1/stream") && APP_JS.contains("'DELETE'"));
    }
}

//! The static files, compiled into the binary and served at
//! `/static/<name>.<content-hash>.<ext>` with a year-long cache: a new build changes the
//! name, so a browser never runs a stale script against a new page.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The UI's static files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    Css,
    Js,
    Icon,
    /// The DAG views' script: graph zoom, trigger form, actions, live log.
    DagJs,
    /// The DAG views' styles: grid, charts, code, log.
    DagCss,
}

impl Asset {
    pub const ALL: [Asset; 5] = [
        Asset::Css,
        Asset::Js,
        Asset::Icon,
        Asset::DagJs,
        Asset::DagCss,
    ];

    fn parts(self) -> (&'static str, &'static str, &'static str, &'static [u8]) {
        match self {
            Asset::Css => (
                "app",
                "css",
                "text/css; charset=utf-8",
                include_bytes!("../static/app.css"),
            ),
            Asset::Js => (
                "app",
                "js",
                "text/javascript; charset=utf-8",
                include_bytes!("../static/app.js"),
            ),
            Asset::Icon => (
                "icon",
                "svg",
                "image/svg+xml",
                include_bytes!("../static/icon.svg"),
            ),
            Asset::DagJs => (
                "dag",
                "js",
                "text/javascript; charset=utf-8",
                include_bytes!("../static/dag.js"),
            ),
            Asset::DagCss => (
                "dag",
                "css",
                "text/css; charset=utf-8",
                include_bytes!("../static/dag.css"),
            ),
        }
    }

    fn index(self) -> usize {
        match self {
            Asset::Css => 0,
            Asset::Js => 1,
            Asset::Icon => 2,
            Asset::DagJs => 3,
            Asset::DagCss => 4,
        }
    }

    pub fn bytes(self) -> &'static [u8] {
        self.parts().3
    }

    /// The file's name with the hash of its content: `app.1a2b3c4d5e6f.css`.
    pub fn file_name(self) -> &'static str {
        static NAMES: OnceLock<[String; 5]> = OnceLock::new();
        let names = NAMES.get_or_init(|| {
            Asset::ALL.map(|asset| {
                let (stem, ext, _, bytes) = asset.parts();
                let digest = Sha256::digest(bytes);
                let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
                format!("{stem}.{hash}.{ext}")
            })
        });
        &names[self.index()]
    }

    pub fn url(self) -> String {
        format!("/static/{}", self.file_name())
    }
}

/// `GET /static/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    match Asset::ALL.into_iter().find(|a| a.file_name() == file) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.parts().2),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            asset.bytes(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_a_hash_of_the_content() {
        let css = Asset::Css.file_name();
        assert!(css.starts_with("app.") && css.ends_with(".css"), "{css}");
        assert_eq!(css.len(), "app..css".len() + 12);
        assert_ne!(Asset::Css.file_name(), Asset::Js.file_name());
    }
}

//! What every page shares: the layout's data ([`Page`]) for `templates/base.html` — the
//! user, the navigation, the CSRF token and the assets' URLs.

use updraft_rest_api::auth::{Action, Resource};

use crate::assets::Asset;
use crate::session::Session;

/// The layout's data; every page template has one as its `page` field.
#[derive(Debug, Clone)]
pub struct Page {
    pub username: String,
    /// The role's name (`Viewer`, `User`, `Op`, `Admin`).
    pub role: &'static str,
    /// For scripts' writes (`X-CSRF-Token`), and for the logout form.
    pub csrf: String,
    /// The active navigation item: `home`, `dags`, `assets`, `cluster` or `admin`.
    pub nav: &'static str,
    pub css: String,
    pub js: String,
    pub icon: String,
    /// Whether the Admin section shows anything for this role (variables and connections
    /// need Op; pools are readable by all, so it is always shown).
    pub can_manage: bool,
}

impl Page {
    pub fn new(session: &Session, nav: &'static str) -> Page {
        Page {
            username: session.username().to_string(),
            role: session.role().as_str(),
            csrf: session.csrf.clone(),
            nav,
            css: Asset::Css.url(),
            js: Asset::Js.url(),
            icon: Asset::Icon.url(),
            can_manage: session.allows(Action::Read, Resource::Variable, None),
        }
    }

    /// `aria-current="page"` for the active navigation item, as an attribute to print.
    pub fn current(&self, item: &str) -> &'static str {
        if self.nav == item {
            "page"
        } else {
            "false"
        }
    }
}

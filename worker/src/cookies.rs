//! The site's cookie jar. A service worker's synthesized responses cannot
//! set cookies in the browser, so the runtime keeps them: Set-Cookie from PHP
//! goes into this jar and the jar's cookies go with every request. The jar
//! lives in the shared memory (a static), so every worker of a scope sees
//! the same cookies, and another scope (another memory) never does.

use std::sync::Mutex;

#[derive(Clone, Debug, PartialEq)]
struct Cookie {
    name: String,
    value: String,
    path: String,
    /// Unix milliseconds; `None` for a session cookie.
    expires: Option<f64>,
}

#[derive(Default)]
pub struct Jar {
    cookies: Vec<Cookie>,
}

pub static JAR: Mutex<Jar> = Mutex::new(Jar { cookies: Vec::new() });

impl Jar {
    /// Applies one `Set-Cookie` header value received for `request_path`.
    pub fn set(&mut self, header: &str, request_path: &str, now_ms: f64) {
        let mut parts = header.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else { return };
        let name = name.trim().to_string();
        if name.is_empty() {
            return;
        }
        let mut cookie = Cookie { name, value: value.trim().to_string(), path: default_path(request_path), expires: None };
        let mut max_age = None;
        for attribute in parts {
            let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            match key.trim().to_ascii_lowercase().as_str() {
                "path" if val.trim().starts_with('/') => cookie.path = val.trim().to_string(),
                "expires" => cookie.expires = parse_http_date(val.trim()).or(cookie.expires),
                "max-age" => max_age = val.trim().parse::<f64>().ok(),
                _ => {}
            }
        }
        if let Some(seconds) = max_age {
            cookie.expires = Some(now_ms + seconds * 1000.0);
        }
        self.cookies.retain(|c| !(c.name == cookie.name && c.path == cookie.path));
        if cookie.expires.is_none_or(|at| at > now_ms) {
            self.cookies.push(cookie);
        }
    }

    /// The `Cookie` header for a request to `path`, merged over the one the
    /// browser sent (cookies that page scripts set); the jar wins on names.
    pub fn header(&mut self, path: &str, browser: Option<&str>, now_ms: f64) -> Option<String> {
        self.cookies.retain(|c| c.expires.is_none_or(|at| at > now_ms));
        let mut matching: Vec<&Cookie> = self.cookies.iter().filter(|c| path_matches(&c.path, path)).collect();
        // Longer paths first, as browsers order them.
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let mut pairs: Vec<String> = Vec::new();
        for c in &matching {
            if !pairs.iter().any(|p| p.split('=').next() == Some(c.name.as_str())) {
                pairs.push(format!("{}={}", c.name, c.value));
            }
        }
        for pair in browser.unwrap_or("").split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let name = pair.split('=').next().unwrap_or("");
            if !matching.iter().any(|c| c.name == name) {
                pairs.push(pair.to_string());
            }
        }
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }
}

/// RFC 6265 default path: the request path up to its last `/`.
fn default_path(request_path: &str) -> String {
    let path = request_path.split('?').next().unwrap_or("/");
    match path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => path[..i].to_string(),
    }
}

fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    let request_path = request_path.split('?').next().unwrap_or("/");
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || request_path[cookie_path.len()..].starts_with('/')))
}

/// `Thu, 01 Jan 1970 00:00:01 GMT` (and the `-`-separated variant PHP
/// writes) to Unix milliseconds.
fn parse_http_date(text: &str) -> Option<f64> {
    let text = text.split_once(',').map(|(_, rest)| rest).unwrap_or(text).trim().replace('-', " ");
    let mut fields = text.split_whitespace();
    let day: i64 = fields.next()?.parse().ok()?;
    let month = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        .iter()
        .position(|m| fields.clone().next().is_some_and(|f| f.to_ascii_lowercase().starts_with(m)))?
        as i64
        + 1;
    fields.next()?;
    let mut year: i64 = fields.next()?.parse().ok()?;
    if year < 100 {
        year += if year < 70 { 2000 } else { 1900 };
    }
    let mut hms = fields.next()?.split(':').map(|v| v.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    // Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + m * 60 + s) * 1000) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_700_000_000_000.0;

    #[test]
    fn parses_http_dates() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:01 GMT"), Some(1000.0));
        assert_eq!(parse_http_date("Tue, 14 Nov 2023 22:13:20 GMT"), Some(NOW));
        assert_eq!(parse_http_date("Tuesday, 14-Nov-2023 22:13:20 GMT"), Some(NOW));
        assert_eq!(parse_http_date("garbage"), None);
    }

    #[test]
    fn set_then_send_with_paths_and_expiry() {
        let mut jar = Jar::default();
        jar.set("wordpress_test_cookie=WP%20Cookie%20check; path=/scope:a/", "/scope:a/wp-login.php", NOW);
        jar.set("wordpress_logged_in_x=admin%7C123; path=/scope:a/; HttpOnly", "/scope:a/wp-login.php", NOW);
        jar.set("wordpress_x=secret; path=/scope:a/wp-admin", "/scope:a/wp-login.php", NOW);
        let admin = jar.header("/scope:a/wp-admin/post-new.php", None, NOW).unwrap();
        assert!(admin.starts_with("wordpress_x=secret; "), "{admin}");
        assert!(admin.contains("wordpress_logged_in_x=admin%7C123"));
        let front = jar.header("/scope:a/?p=1", None, NOW).unwrap();
        assert!(!front.contains("wordpress_x=secret"), "{front}");
        assert!(jar.header("/scope:b/", None, NOW).is_none());
        assert!(!path_matches("/scope:a/wp-admin", "/scope:a/wp-administrator"));
    }

    #[test]
    fn expired_or_zero_max_age_deletes_and_jar_wins_over_browser() {
        let mut jar = Jar::default();
        jar.set("a=1; path=/", "/", NOW);
        jar.set("b=2; path=/; Max-Age=60", "/", NOW);
        assert_eq!(jar.header("/x", Some("a=browser; js=3"), NOW).as_deref(), Some("a=1; b=2; js=3"));
        jar.set("a=deleted; path=/; expires=Thu, 01 Jan 1970 00:00:01 GMT", "/", NOW);
        jar.set("b=; path=/; Max-Age=0", "/", NOW);
        assert_eq!(jar.header("/x", None, NOW), None);
        jar.set("c=3; path=/; Max-Age=1", "/", NOW);
        assert_eq!(jar.header("/x", None, NOW + 2000.0), None, "expired by time");
    }

    #[test]
    fn default_path_is_the_request_directory() {
        assert_eq!(default_path("/scope:a/wp-login.php?x=1"), "/scope:a");
        assert_eq!(default_path("/index.php"), "/");
    }
}

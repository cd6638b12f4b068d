//! Database URLs as they may be shown.

/// A URL fit for messages: the password, if any, is replaced.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_password_in_a_url_is_never_shown() {
        assert_eq!(
            redact("postgres://app:s3cret@db/cases"),
            "postgres://app:***@db/cases"
        );
        assert_eq!(redact("postgres://app@db/cases"), "postgres://app@db/cases");
        assert_eq!(redact("sqlite://casewarden.db"), "sqlite://casewarden.db");
    }
}

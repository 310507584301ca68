//! What a `User-Agent` says about the device, with the woothee parser (its rules are a port of
//! the maintained multi-language woothee project).

use records::DeviceInfo;

/// The device type (`desktop`, `mobile`, `tablet`, `bot`), platform (`windows`, `mac`, `linux`,
/// `ios`, `android`, ...) and browser (`chrome`, `safari`, ...) of `user_agent`; empty fields
/// for what it does not say.
pub fn parse_user_agent(user_agent: &str) -> DeviceInfo {
    if user_agent.is_empty() {
        return DeviceInfo::default();
    }
    let Some(found) = woothee::parser::Parser::new().parse(user_agent) else {
        return DeviceInfo::default();
    };
    let os = found.os.to_ascii_lowercase();
    let tablet = os.contains("ipad") || (os == "android" && !user_agent.contains("Mobile"));
    let device_type = match found.category {
        _ if tablet => "tablet",
        "pc" => "desktop",
        "smartphone" | "mobilephone" => "mobile",
        "crawler" => "bot",
        _ => "",
    };
    let platform = match os.as_str() {
        o if o.starts_with("windows") => "windows",
        "mac osx" | "mac os classic" => "mac",
        "iphone" | "ipad" | "ipod" | "ios" => "ios",
        "android" => "android",
        "linux" => "linux",
        "chromeos" => "chromeos",
        "unknown" | "" => "",
        _ => "other",
    };
    let browser = match found.name.to_ascii_lowercase().as_str() {
        "unknown" => String::new(),
        "internet explorer" => "ie".to_owned(),
        name => name.replace(' ', "_"),
    };
    DeviceInfo { device_type: device_type.to_owned(), platform: platform.to_owned(), browser }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(ua: &str) -> (String, String, String) {
        let d = parse_user_agent(ua);
        (d.device_type, d.platform, d.browser)
    }

    #[test]
    fn common_agents_are_recognised() {
        let chrome_windows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                              Chrome/120.0.0.0 Safari/537.36";
        assert_eq!(info(chrome_windows), ("desktop".into(), "windows".into(), "chrome".into()));
        let safari_mac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                          Version/17.1 Safari/605.1.15";
        assert_eq!(info(safari_mac), ("desktop".into(), "mac".into(), "safari".into()));
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                      Version/17.1 Mobile/15E148 Safari/604.1";
        assert_eq!(info(iphone), ("mobile".into(), "ios".into(), "safari".into()));
        let ipad = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                    Version/16.6 Mobile/15E148 Safari/604.1";
        assert_eq!(info(ipad).0, "tablet");
        let android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                       Chrome/120.0.0.0 Mobile Safari/537.36";
        assert_eq!(info(android), ("mobile".into(), "android".into(), "chrome".into()));
        let firefox_linux = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
        assert_eq!(info(firefox_linux), ("desktop".into(), "linux".into(), "firefox".into()));
    }

    #[test]
    fn nothing_to_go_on_gives_empty_fields() {
        assert_eq!(parse_user_agent(""), DeviceInfo::default());
        assert_eq!(info("curl/8.5.0").1, "");
        assert_eq!(info("not a browser at all").0, "");
    }
}

//! AMQP topic matching for the in-process bus: `*` is one word, `#` zero or more.

/// Whether `routing_key` matches the binding `pattern` the way a RabbitMQ topic exchange does.
pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = routing_key.split('.').collect();
    matches(&pattern, &key)
}

fn matches(pattern: &[&str], key: &[&str]) -> bool {
    match pattern.split_first() {
        None => key.is_empty(),
        Some((&"#", rest)) => (0..=key.len()).any(|skip| matches(rest, &key[skip..])),
        Some((word, rest)) => match key.split_first() {
            Some((first, key_rest)) => (*word == "*" || word == first) && matches(rest, key_rest),
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn words_stars_and_hashes_match_like_rabbitmq() {
        assert!(topic_matches("#", "all.normal"));
        assert!(topic_matches("#", ""));
        assert!(topic_matches("all.*", "all.urgent"));
        assert!(!topic_matches("all.*", "custom.urgent"));
        assert!(topic_matches("*.urgent", "custom.urgent"));
        assert!(!topic_matches("*", "all.normal"));
        assert!(topic_matches("custom.#", "custom"));
        assert!(topic_matches("#.urgent", "a.b.urgent"));
        assert!(!topic_matches("#.urgent", "a.b.normal"));
        assert!(topic_matches("all.normal", "all.normal"));
    }
}

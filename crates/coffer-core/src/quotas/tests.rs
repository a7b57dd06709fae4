//! Pure tests of the quota rules: validation with Vault's messages, which rule applies to a
//! path, the exempt list, blocking.

use super::*;

fn input(name: &str, path: &str, rate: f64) -> RateLimitQuota {
    RateLimitQuota {
        name: name.into(),
        path: path.into(),
        role: String::new(),
        rate,
        interval: Duration::ZERO,
        block_interval: Duration::ZERO,
        inheritable: None,
    }
}

fn rules(specs: &[(&str, &str)]) -> BTreeMap<String, Arc<Rule>> {
    specs
        .iter()
        .map(|(name, path)| {
            let stored = validate(input(name, path, 10.0)).unwrap();
            ((*name).to_owned(), Arc::new(Rule::new(stored).unwrap()))
        })
        .collect()
}

fn applies(rules: &BTreeMap<String, Arc<Rule>>, target: QuotaTarget<'_>) -> Option<String> {
    matching_rule(rules, target).map(|r| r.stored.name.clone())
}

fn message(input: RateLimitQuota) -> String {
    match validate(input) {
        Err(CoreError::BadRequest(m)) => m,
        other => format!("not a bad request: {other:?}"),
    }
}

#[test]
fn validation_uses_vaults_messages() {
    assert_eq!(message(input("q", "", 0.0)), "'rate' is invalid");
    assert_eq!(message(input("q", "", -1.0)), "'rate' is invalid");
    assert_eq!(message(input("q", "", f64::NAN)), "'rate' is invalid");
    assert_eq!(message(input("q", "secret/", 1.0)), r#"invalid mount path "secret/""#);
    assert_eq!(message(input("q", "nope", 1.0)), r#"invalid mount path "nope/""#);
    let mut role = input("q", "", 1.0);
    role.role = "web".into();
    assert_eq!(
        message(role.clone()),
        r#"Mount path "" is not a valid auth method and therefore unsuitable for use with role-based quotas"#
    );
    role.path = "sys/health".into();
    assert!(message(role).starts_with("Quotas cannot contain both a path suffix and a role"));
}

#[test]
fn paths_are_read_back_as_vault_shows_them() {
    let view = |p: &str| validate(input("q", p, 1.0)).unwrap().view();
    assert_eq!(view("").path, "");
    assert_eq!(view("/").path, "");
    assert_eq!(view("sys").path, "sys/");
    assert_eq!(view("/sys/key-status/").path, "sys/key-status");
    assert_eq!(view("sys/key*").path, "sys/key*");
    // The global rule is inheritable by default, the others not; an interval of 0 is 1 s.
    assert_eq!(view("").inheritable, Some(true));
    assert_eq!(view("sys").inheritable, Some(false));
    assert_eq!(view("").interval, Duration::from_secs(1));
}

#[test]
fn the_most_specific_rule_applies() {
    let all = rules(&[
        ("global", ""),
        ("sys", "sys"),
        ("glob", "sys/key*"),
        ("longer-glob", "sys/key-st*"),
        ("exact", "sys/key-status"),
    ]);
    assert_eq!(
        applies(&all, QuotaTarget::Vault("sys/key-status")).as_deref(),
        Some("exact")
    );
    assert_eq!(
        applies(&all, QuotaTarget::Vault("sys/key-statusx")).as_deref(),
        Some("longer-glob")
    );
    assert_eq!(
        applies(&all, QuotaTarget::Vault("sys/keyring")).as_deref(),
        Some("glob")
    );
    assert_eq!(applies(&all, QuotaTarget::Vault("sys/leader")).as_deref(), Some("sys"));
    assert_eq!(applies(&all, QuotaTarget::Vault("sys")).as_deref(), Some("sys"));
    assert_eq!(
        applies(&all, QuotaTarget::Vault("secret/data/a")).as_deref(),
        Some("global")
    );
    assert_eq!(applies(&all, QuotaTarget::Aws).as_deref(), Some("global"));
    // An exact path rule covers that path only, as in Vault: not the paths below it.
    let exact = rules(&[("exact", "sys/key-status")]);
    assert_eq!(applies(&exact, QuotaTarget::Vault("sys/key-status/x")), None);
    assert_eq!(applies(&exact, QuotaTarget::Aws), None);
}

#[test]
fn the_exempt_list_is_a_longest_prefix_match() {
    let list: Vec<String> = ["sys/health", "sys/coffer/*", "!sys/coffer/accounts"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert!(is_exempt(&list, "sys/health"));
    assert!(is_exempt(&list, "sys/coffer/audit-heads"));
    assert!(!is_exempt(&list, "sys/coffer/accounts"));
    assert!(!is_exempt(&list, "sys/seal"));
    assert!(!is_exempt(&[], "sys/health"));
    let defaults = QuotaConfig::default().rate_limit_exempt_paths;
    assert!(is_exempt(&defaults, "sys/seal-status"));
    assert!(is_exempt(&defaults, "sys/unseal"));
    assert!(!is_exempt(&defaults, "sys/key-status"));
}

#[test]
fn a_blocked_client_stays_blocked_for_the_block_interval() {
    let mut spec = input("b", "", 1.0);
    spec.interval = Duration::from_millis(100);
    spec.block_interval = Duration::from_secs(30);
    let rule = Rule::new(validate(spec).unwrap()).unwrap();
    let ip: IpAddr = "10.0.0.1".parse().unwrap();
    assert!(rule.take(ip).0);
    let (allowed, headers) = rule.take(ip);
    assert!(!allowed);
    assert_eq!(headers.retry_after_secs, Some(30));
    std::thread::sleep(Duration::from_millis(150));
    // The bucket has refilled, but the client is still blocked.
    let (allowed, headers) = rule.take(ip);
    assert!(!allowed);
    assert!(headers.retry_after_secs.unwrap() <= 30);
    // Another client is not.
    assert!(rule.take("10.0.0.2".parse().unwrap()).0);
}

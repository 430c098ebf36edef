use chrono::{Duration, TimeZone, Utc};

use super::*;

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap()
}

fn operator(name: &str, site: &str) -> NewUser {
    NewUser {
        name: name.into(),
        full_name: format!("{name} (printed)"),
        role: Role::Operator,
        scope: Scope {
            sites: vec![site.into()],
            lines: vec![],
        },
        password: "correct horse battery".into(),
    }
}

#[test]
fn a_user_logs_in_with_their_password_and_only_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let store = UserStore::open(&dir.path().join("users.json"), LockoutPolicy::default()).unwrap();
    store.create(operator("li.na", "anhui"), t0()).unwrap();
    let u = store
        .verify("li.na", "correct horse battery", t0())
        .unwrap();
    assert_eq!(u.role, Role::Operator);
    assert!(matches!(
        store.verify("li.na", "wrong", t0()),
        Err(LoginError::Wrong { known: true, .. })
    ));
    assert!(matches!(
        store.verify("nobody", "correct horse battery", t0()),
        Err(LoginError::Wrong { known: false, .. })
    ));
    // Kept as a hash, never as the password.
    let file = std::fs::read_to_string(store.path()).unwrap();
    assert!(!file.contains("correct horse"), "{file}");
    assert!(file.contains("$argon2id$"), "{file}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "only the owner reads the user file");
    }
}

#[test]
fn repeated_wrong_passwords_lock_the_account_across_a_restart_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let policy = LockoutPolicy {
        attempts: 3,
        lock_for: Duration::minutes(30),
    };
    let store = UserStore::open(&path, policy).unwrap();
    store.create(operator("li.na", "anhui"), t0()).unwrap();
    for i in 0..3 {
        let e = store.verify("li.na", "guess", t0()).unwrap_err();
        assert_eq!(
            e,
            LoginError::Wrong {
                locked_now: i == 2,
                known: true
            }
        );
    }
    // Locked: even the right password is refused, also after a restart.
    let store = UserStore::open(&path, policy).unwrap();
    assert!(matches!(
        store.verify(
            "li.na",
            "correct horse battery",
            t0() + Duration::minutes(29)
        ),
        Err(LoginError::Locked { .. })
    ));
    assert!(store
        .verify(
            "li.na",
            "correct horse battery",
            t0() + Duration::minutes(31)
        )
        .is_ok());
}

#[test]
fn a_success_resets_the_count_and_an_admin_unlocks() {
    let dir = tempfile::tempdir().unwrap();
    let policy = LockoutPolicy {
        attempts: 2,
        lock_for: Duration::hours(1),
    };
    let store = UserStore::open(&dir.path().join("u.json"), policy).unwrap();
    store.create(operator("li.na", "anhui"), t0()).unwrap();
    let _ = store.verify("li.na", "guess", t0());
    store
        .verify("li.na", "correct horse battery", t0())
        .unwrap();
    let _ = store.verify("li.na", "guess", t0());
    assert!(store.verify("li.na", "correct horse battery", t0()).is_ok());
    let _ = store.verify("li.na", "guess", t0());
    let _ = store.verify("li.na", "guess", t0());
    assert!(store.get("li.na").unwrap().locked_until.is_some());
    store
        .update(
            "li.na",
            UserUpdate {
                unlock: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(store.verify("li.na", "correct horse battery", t0()).is_ok());
}

#[test]
fn bad_accounts_are_refused_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = UserStore::open(&dir.path().join("u.json"), LockoutPolicy::default()).unwrap();
    let mut short = operator("a", "anhui");
    short.password = "short".into();
    let e = store.create(short, t0()).unwrap_err().to_string();
    assert!(e.starts_with("password:"), "{e}");
    let e = store
        .create(operator("bad name", "anhui"), t0())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("name:"), "{e}");
    let mut lines = operator("b", "anhui");
    lines.scope.lines = vec!["line-1".into()];
    let e = store.create(lines, t0()).unwrap_err().to_string();
    assert!(e.contains("scope.lines"), "{e}");
    store.create(operator("c", "anhui"), t0()).unwrap();
    assert!(matches!(
        store.create(operator("c", "anhui"), t0()),
        Err(AccessError::Exists(_))
    ));
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{ users: ").unwrap();
    let e = UserStore::open(&broken, LockoutPolicy::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("broken.json"), "{e}");
}

#[test]
fn scopes_allow_their_sites_and_listed_lines_only() {
    let anhui = Scope {
        sites: vec!["anhui".into()],
        lines: vec![],
    };
    assert!(anhui.allows_site("anhui") && !anhui.allows_site("shenzhen"));
    assert!(anhui.allows_line("anhui", "line-2"));
    assert!(!anhui.allows_line("shenzhen", "line-1"));
    let one_line = Scope {
        sites: vec!["anhui".into(), "sichuan".into()],
        lines: vec!["anhui/line-1".into()],
    };
    assert!(one_line.allows_line("anhui", "line-1"));
    assert!(!one_line.allows_line("anhui", "line-2"));
    assert!(
        one_line.allows_line("sichuan", "line-2"),
        "no lines listed there"
    );
    assert!(!one_line.whole_site("anhui") && one_line.whole_site("sichuan"));
    assert!(Scope::all().every_site() && !anhui.every_site());
}

#[test]
fn roles_grant_what_their_job_needs() {
    assert!(Role::Operator.grants(Permission::AcknowledgeAlert));
    assert!(!Role::Operator.grants(Permission::ManageWorkOrders));
    assert!(!Role::Operator.grants(Permission::ViewAudit));
    assert!(Role::Maintenance.grants(Permission::ManageWorkOrders));
    assert!(Role::Quality.grants(Permission::AcceptQuality));
    assert!(Role::Quality.grants(Permission::ViewAudit));
    assert!(!Role::Hq.grants(Permission::AcknowledgeAlert));
    assert!(!Role::Quality.grants(Permission::ManageUsers));
    assert!(Role::Admin.grants(Permission::ManageUsers));
    assert!(Role::Admin.grants(Permission::ChangeSettings));
    assert!(!Role::Hq.grants(Permission::ChangeSettings));
}

fn someone() -> User {
    User {
        name: "li.na".into(),
        full_name: "Li Na".into(),
        role: Role::Operator,
        scope: Scope::all(),
        disabled: false,
        locked_until: None,
    }
}

#[test]
fn sessions_end_by_idleness_by_lifetime_and_by_logout() {
    let sessions = Sessions::new(SessionPolicy {
        lifetime: Duration::hours(8),
        idle: Duration::minutes(15),
    });
    let s = sessions.start(someone(), t0()).unwrap();
    assert_eq!(s.token.len(), 64);
    assert_ne!(s.token, s.csrf);
    // Active every 10 minutes: still valid after an hour.
    for m in (10..=60).step_by(10) {
        sessions
            .touch(&s.token, t0() + Duration::minutes(m))
            .unwrap();
    }
    assert_eq!(
        sessions
            .touch(&s.token, t0() + Duration::minutes(76))
            .unwrap_err(),
        SessionError::Idle(15)
    );
    assert_eq!(
        sessions
            .touch(&s.token, t0() + Duration::minutes(77))
            .unwrap_err(),
        SessionError::Unknown,
        "an idle session is gone"
    );

    let s = sessions.start(someone(), t0()).unwrap();
    let mut t = t0();
    while t < t0() + Duration::hours(8) - Duration::minutes(10) {
        t += Duration::minutes(10);
        sessions.touch(&s.token, t).unwrap();
    }
    assert_eq!(
        sessions
            .touch(&s.token, t0() + Duration::hours(8))
            .unwrap_err(),
        SessionError::Expired
    );

    let s = sessions.start(someone(), t0()).unwrap();
    sessions.end(&s.token);
    assert_eq!(
        sessions.touch(&s.token, t0()).unwrap_err(),
        SessionError::Unknown
    );
}

#[test]
fn a_ticket_logs_in_once_within_a_minute() {
    let sessions = Sessions::new(SessionPolicy::default());
    let t = sessions.ticket(someone(), t0()).unwrap();
    assert!(sessions.redeem(&t, t0() + Duration::seconds(59)).is_some());
    assert!(sessions.redeem(&t, t0() + Duration::seconds(59)).is_none());
    let late = sessions.ticket(someone(), t0()).unwrap();
    assert!(sessions
        .redeem(&late, t0() + Duration::seconds(61))
        .is_none());
}

#[test]
fn changing_a_user_ends_their_sessions() {
    let sessions = Sessions::new(SessionPolicy::default());
    let a = sessions.start(someone(), t0()).unwrap();
    let _b = sessions.start(someone(), t0()).unwrap();
    assert_eq!(sessions.end_user("li.na"), 2);
    assert!(sessions.touch(&a.token, t0()).is_err());
}

#[test]
fn guesses_racing_the_lock_are_answered_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let policy = LockoutPolicy {
        attempts: 5,
        lock_for: Duration::minutes(30),
    };
    let store = std::sync::Arc::new(UserStore::open(&dir.path().join("u.json"), policy).unwrap());
    store.create(operator("li.na", "anhui"), t0()).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..4)
                    .map(|_| store.verify("li.na", "guess", t0()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let wrong = answers
        .iter()
        .filter(|a| matches!(a, Err(LoginError::Wrong { .. })))
        .count();
    assert_eq!(
        wrong, 5,
        "exactly the allowed guesses are checked: {answers:?}"
    );
}

//! Time as a dependency. Services read "now" from a [`Clock`] they are given, and pass it to
//! domain functions as a parameter; tests give a [`ManualClock`] and move it instead of moving
//! rows in the database.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// Where a service reads the current instant.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The clock services share: cheap to clone.
pub type SharedClock = Arc<dyn Clock>;

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system clock as a [`SharedClock`].
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock a test sets and advances; clones share the same instant.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { now: Arc::new(Mutex::new(start)) }
    }

    pub fn set(&self, instant: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = instant;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }

    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A clock read from a file holding one RFC 3339 instant (`2026-12-01T10:00:00+08:00`), for
/// demos and rehearsals: whoever writes the file moves time for the service, the way a test
/// moves a [`ManualClock`]. While the file is missing, empty or unreadable the machine's clock
/// is used. Never configure it in production: every deadline would follow the file.
#[derive(Debug, Clone)]
pub struct FileClock {
    path: std::path::PathBuf,
}

impl FileClock {
    pub fn new(path: impl Into<std::path::PathBuf>) -> FileClock {
        FileClock { path: path.into() }
    }

    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for FileClock {
    fn now(&self) -> DateTime<Utc> {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| DateTime::parse_from_rfc3339(text.trim()).ok())
            .map_or_else(Utc::now, |time| time.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_clock_reads_its_file_and_falls_back_to_the_machine_clock() {
        let path = std::env::temp_dir().join(format!("jinfu-clock-{}", std::process::id()));
        let clock = FileClock::new(&path);
        let _ = std::fs::remove_file(&path);
        let before = Utc::now();
        assert!(clock.now() >= before, "no file: the machine's clock");
        std::fs::write(&path, "2026-12-01T10:00:00+08:00\n").expect("writable temp dir");
        assert_eq!(clock.now(), DateTime::parse_from_rfc3339("2026-12-01T02:00:00Z").map(|t| t.with_timezone(&Utc)).expect("valid"));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = DateTime::parse_from_rfc3339("2026-11-29T09:30:00+08:00").map(|t| t.with_timezone(&Utc)).expect("valid");
        let clock = ManualClock::new(start);
        let shared = clock.shared();
        assert_eq!(shared.now(), start);
        clock.advance(Duration::hours(2));
        assert_eq!(shared.now(), start + Duration::hours(2));
        clock.set(start);
        assert_eq!(shared.now(), start);
    }
}

//! Issuers (出函机构): banks, insurers and guarantee companies of a province, and the states
//! they pass through. Exit is final; only an active issuer takes applications or issues.

/// What kind of institution an issuer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerKind {
    Bank,
    Insurer,
    Guarantor,
}

impl IssuerKind {
    pub const ALL: [IssuerKind; 3] = [IssuerKind::Bank, IssuerKind::Insurer, IssuerKind::Guarantor];

    /// The code stored and published.
    pub const fn code(self) -> &'static str {
        match self {
            IssuerKind::Bank => "bank",
            IssuerKind::Insurer => "insurer",
            IssuerKind::Guarantor => "guarantor",
        }
    }

    pub fn parse(code: &str) -> Option<IssuerKind> {
        IssuerKind::ALL.into_iter().find(|kind| kind.code() == code)
    }
}

/// Where an issuer stands with the province.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerState {
    Active,
    Suspended,
    Exited,
}

impl IssuerState {
    pub const ALL: [IssuerState; 3] = [IssuerState::Active, IssuerState::Suspended, IssuerState::Exited];

    /// The code stored and published.
    pub const fn code(self) -> &'static str {
        match self {
            IssuerState::Active => "active",
            IssuerState::Suspended => "suspended",
            IssuerState::Exited => "exited",
        }
    }

    pub fn parse(code: &str) -> Option<IssuerState> {
        IssuerState::ALL.into_iter().find(|state| state.code() == code)
    }
}

/// Why an issuer may not do what was asked. Every variant is a precondition the caller can see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerRefusal {
    #[error("province {province} has paused the onboarding of new issuers")]
    OnboardingPaused { province: String },
    #[error("issuer {issuer_code} has exited; it cannot be registered again")]
    ExitedCannotRegister { issuer_code: String },
    #[error("issuer {issuer_code} has exited; exit is final")]
    ExitIsFinal { issuer_code: String },
    #[error("issuer {issuer_code} has exited")]
    ExitedOffersNoProducts { issuer_code: String },
    #[error("issuer {issuer_code} is not active and takes no applications")]
    TakesNoApplications { issuer_code: String },
    #[error("issuer {issuer_code} is not active and may not issue")]
    MayNotIssue { issuer_code: String },
}

/// An issuer code: 1–32 upper-case letters, digits or `_`.
pub fn is_issuer_code(text: &str) -> bool {
    !text.is_empty() && text.len() <= 32 && text.bytes().all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b'_')
}

/// Whether an issuer may be registered (or its details updated) given its current state, if
/// any, and whether the province has paused onboarding. A paused province still lets known
/// issuers update their details; an exited issuer never comes back.
pub fn may_register(province: &str, issuer_code: &str, existing: Option<IssuerState>, onboarding_paused: bool) -> Result<(), IssuerRefusal> {
    match existing {
        None if onboarding_paused => Err(IssuerRefusal::OnboardingPaused { province: province.to_owned() }),
        Some(IssuerState::Exited) => Err(IssuerRefusal::ExitedCannotRegister { issuer_code: issuer_code.to_owned() }),
        _ => Ok(()),
    }
}

/// Whether an issuer in `current` may be moved to `next`: any change but leaving `exited`.
pub fn may_change_state(issuer_code: &str, current: IssuerState, next: IssuerState) -> Result<(), IssuerRefusal> {
    if current == IssuerState::Exited && next != IssuerState::Exited {
        return Err(IssuerRefusal::ExitIsFinal { issuer_code: issuer_code.to_owned() });
    }
    Ok(())
}

/// Whether an issuer may register or change products: not after exit (a suspended issuer may
/// prepare its return).
pub fn may_offer_products(issuer_code: &str, state: IssuerState) -> Result<(), IssuerRefusal> {
    if state == IssuerState::Exited {
        return Err(IssuerRefusal::ExitedOffersNoProducts { issuer_code: issuer_code.to_owned() });
    }
    Ok(())
}

/// Whether an issuer takes new applications: only while active.
pub fn takes_applications(issuer_code: &str, state: IssuerState) -> Result<(), IssuerRefusal> {
    if state != IssuerState::Active {
        return Err(IssuerRefusal::TakesNoApplications { issuer_code: issuer_code.to_owned() });
    }
    Ok(())
}

/// Whether an issuer may issue a guarantee: only while active.
pub fn may_issue(issuer_code: &str, state: IssuerState) -> Result<(), IssuerRefusal> {
    if state != IssuerState::Active {
        return Err(IssuerRefusal::MayNotIssue { issuer_code: issuer_code.to_owned() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_none() {
        for kind in IssuerKind::ALL {
            assert_eq!(IssuerKind::parse(kind.code()), Some(kind));
        }
        for state in IssuerState::ALL {
            assert_eq!(IssuerState::parse(state.code()), Some(state));
        }
        assert_eq!(IssuerKind::parse("Bank"), None);
        assert_eq!(IssuerState::parse(""), None);
    }

    #[test]
    fn issuer_codes_are_short_upper_case_words() {
        assert!(is_issuer_code("PICC"));
        assert!(is_issuer_code("ICBC_G2"));
        assert!(!is_issuer_code(""));
        assert!(!is_issuer_code("picc"));
        assert!(!is_issuer_code("PI-CC"));
        assert!(!is_issuer_code(&"A".repeat(33)));
    }

    #[test]
    fn a_paused_province_refuses_new_issuers_but_not_known_ones() {
        assert_eq!(may_register("520000", "NEWG", None, true), Err(IssuerRefusal::OnboardingPaused { province: "520000".into() }));
        assert_eq!(may_register("520000", "NEWG", None, false), Ok(()));
        assert_eq!(may_register("520000", "PICC", Some(IssuerState::Suspended), true), Ok(()));
        assert_eq!(may_register("520000", "PICC", Some(IssuerState::Active), false), Ok(()));
    }

    #[test]
    fn an_exited_issuer_never_returns() {
        assert!(matches!(may_register("520000", "CCBG", Some(IssuerState::Exited), false), Err(IssuerRefusal::ExitedCannotRegister { .. })));
        assert!(may_change_state("CCBG", IssuerState::Exited, IssuerState::Active).is_err());
        assert!(may_change_state("CCBG", IssuerState::Exited, IssuerState::Suspended).is_err());
        assert!(may_change_state("CCBG", IssuerState::Exited, IssuerState::Exited).is_ok());
        assert!(may_change_state("CCBG", IssuerState::Suspended, IssuerState::Active).is_ok());
        assert!(may_offer_products("CCBG", IssuerState::Exited).is_err());
        assert!(may_offer_products("CCBG", IssuerState::Suspended).is_ok());
    }

    #[test]
    fn only_an_active_issuer_takes_applications_and_issues() {
        for state in [IssuerState::Suspended, IssuerState::Exited] {
            assert!(takes_applications("PICC", state).is_err());
            assert!(may_issue("PICC", state).is_err());
        }
        assert!(takes_applications("PICC", IssuerState::Active).is_ok());
        assert_eq!(
            may_issue("PICC", IssuerState::Suspended).map_err(|refusal| refusal.to_string()),
            Err("issuer PICC is not active and may not issue".to_owned())
        );
    }
}

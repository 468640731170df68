//! The zh-CN message templates (`services/notification/templates/<name>.j2`, compiled into the
//! binary), rendered with MiniJinja. Each template has three blocks: `subject` (e-mail subject,
//! inbox title, webhook `title`), `sms` (at most [`SMS_MAX_CHARS`] characters) and `body`
//! (e-mail and inbox text). Filters: `yuan` (fen → yuan to the fen, `1,234.56`), `bj` (an
//! RFC 3339 instant → Beijing time `2026年12月01日 09:30`), `bjdate` (`YYYY-MM-DD` →
//! `2026年12月01日`), `mask` (a USCC → its first 6 and last 4 characters).

use minijinja::{Environment, UndefinedBehavior, Value};

use super::plan::Message;

/// Longest SMS text sent (a long SMS is split by the carrier into 67-character parts).
pub const SMS_MAX_CHARS: usize = 300;

macro_rules! templates {
    ($($name:literal),+ $(,)?) => {
        /// Every template: its name and source.
        pub const TEMPLATES: &[(&str, &str)] = &[$(($name, include_str!(concat!("../../templates/", $name, ".j2")))),+];
    };
}

templates!(
    "deposit_received",
    "deposit_short",
    "deposit_suspended",
    "deposit_reminder",
    "deposit_forfeited",
    "refund_ordered",
    "refund_paid",
    "refund_failed",
    "refund_overdue",
    "operators_refund_overdue",
    "guarantee_issued",
    "contract_sign_by",
    "contract_signed",
    "contract_deadline_breached",
    "invoice_received",
    "invoice_objection_window",
    "invoice_deemed",
    "invoice_paid",
    "payment_due",
    "payment_overdue",
    "payment_overdue_supplier",
    "credit_proposed",
    "credit_record",
    "credit_dismissed",
    "credit_repair_decided",
    "loan_decided",
    "loan_disbursed",
    "loan_account_locked",
    "loan_confirmation",
    "loan_closed",
    "loan_overdue",
    "tender_changed",
    "reminder_sign_by",
    "reminder_publish_by",
    "reminder_object_by",
    "operators_suspense",
    "operators_refund_failed",
    "operators_alert",
);

/// A message in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub sms: String,
    pub body: String,
}

/// The compiled templates.
pub struct Templates {
    environment: Environment<'static>,
}

impl Templates {
    /// Compiles every template; an error names the template that does not compile.
    pub fn load() -> Result<Templates, minijinja::Error> {
        let mut environment = Environment::new();
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        environment.set_keep_trailing_newline(false);
        environment.add_filter("yuan", yuan);
        environment.add_filter("bj", beijing_time);
        environment.add_filter("bjdate", beijing_date);
        environment.add_filter("mask", mask_uscc);
        environment.add_filter("zh", in_chinese);
        // A field an event carries as null (a contract breach's `detail`, a date still pending)
        // reads as a dash, not "none".
        environment.set_formatter(|out, state, value| {
            if value.is_none() {
                out.write_str("—").map_err(|_| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "writing a template"))
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        for (name, source) in TEMPLATES {
            environment.add_template(name, source)?;
        }
        Ok(Templates { environment })
    }

    /// Renders `message` (its template and variables).
    pub fn render(&self, message: &Message) -> Result<Rendered, minijinja::Error> {
        let template = self.environment.get_template(message.template)?;
        let mut captured = template.render_captured(Value::from_serialize(&message.vars))?;
        captured.with_state_mut(|state| {
            let subject = state.render_block("subject")?.trim().to_owned();
            let sms: String = state.render_block("sms")?.trim().chars().take(SMS_MAX_CHARS).collect();
            let body = state.render_block("body")?.trim().to_owned();
            Ok(Rendered { subject, sms, body })
        })
    }
}

fn yuan(value: Value) -> Result<String, minijinja::Error> {
    let fen = i64::try_from(value.clone())
        .map_err(|_| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, format!("yuan: {value} is not an amount in fen")))?;
    let (sign, fen) = if fen < 0 { ("-", fen.unsigned_abs()) } else { ("", fen.unsigned_abs()) };
    let whole = (fen / 100).to_string();
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    Ok(format!("{sign}{grouped}.{:02}", fen % 100))
}

/// A null (a date still pending) reads as a dash.
fn beijing_time(value: Value) -> String {
    if value.is_none() || value.is_undefined() {
        return "—".into();
    }
    let value = value.to_string();
    match chrono::DateTime::parse_from_rfc3339(&value) {
        Ok(time) => jinfu_ledger::beijing::at(time.with_timezone(&chrono::Utc)).format("%Y年%m月%d日 %H:%M").to_string(),
        Err(_) => value,
    }
}

fn beijing_date(value: Value) -> String {
    if value.is_none() || value.is_undefined() {
        return "—".into();
    }
    match chrono::NaiveDate::parse_from_str(&value.to_string(), "%Y-%m-%d") {
        Ok(date) => date.format("%Y年%m月%d日").to_string(),
        Err(_) => beijing_time(value).chars().take(11).collect(),
    }
}

/// The Chinese words for the codes events carry (clocks, due-date bases, behaviours, suspension
/// and refund reasons, sources); an unknown code is shown as it is.
fn in_chinese(value: String) -> String {
    let words = match value.as_str() {
        "signing" => "合同签订",
        "publication" => "合同公告",
        "filing" => "合同备案",
        "acceptance" => "履约验收",
        "contract" => "合同约定",
        "law" => "法定期限",
        "centre" => "交易中心规定",
        "false_materials" => "提供虚假材料",
        "collusion" => "串通投标",
        "bribery" => "行贿",
        "refusing_to_sign" => "拒不签订合同",
        "unilateral_termination" => "擅自终止合同",
        "false_complaint" => "虚假投诉",
        "loan_default" => "贷款违约",
        "guarantee_fraud" => "保函欺诈",
        "non_performance" => "不履行合同",
        "late_payment" => "逾期付款",
        "supplier_barred" => "供应商处于禁止参加采购活动期间",
        "lender_rejected" => "贷款机构审查未通过",
        "unknown_sub_account" => "子账号不存在",
        "wrong_collection_account" => "收款账户错误",
        "payer_name_mismatch" => "付款人名称与投标人不符",
        "payer_not_basic_account" => "非基本账户转出",
        "late" => "截止时间后到账",
        "section_closed" => "标段已关闭",
        "account_closed" => "收款账户已销户",
        "account_frozen" => "收款账户已冻结",
        "name_mismatch" => "户名不符",
        "ledger" => "保证金系统",
        "guarantee" => "电子保函系统",
        "operator" => "交易中心工作人员",
        _ => return value,
    };
    words.to_owned()
}

fn mask_uscc(value: String) -> String {
    if value.chars().count() == 18 {
        let chars: Vec<char> = value.chars().collect();
        format!("{}********{}", chars[..6].iter().collect::<String>(), chars[14..].iter().collect::<String>())
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::Category;

    /// Variables that cover every field any template reads (as the events' schemas name them).
    pub fn example_vars() -> serde_json::Value {
        serde_json::from_str(
            r#"{
            "centre_id": "520100", "occurred_at": "2026-12-01T08:00:00Z", "event_type": "x", "section_id": "GZ-2026-0042-01",
            "bidder_uscc": "91520100MA6DKQ1X2B", "supplier_uscc": "91520100MA6DKQ1X2B", "purchaser_uscc": "12520100MB1234567X",
            "subject_uscc": "91520100MA6DKQ1X2B", "amount_fen": 1234567, "held_fen": 1000000, "required_fen": 5000000,
            "missing_fen": 4000000, "deposit_deadline": "2026-12-02T01:30:00Z", "reason": "late", "status": "short",
            "principal_fen": 5000000, "interest_fen": 1234, "due_on": "2026-12-08", "failure_reason": "account_closed",
            "guarantee_no": "BH2026120100001", "issuer_code": "GZBANK", "valid_to": "2027-03-01", "contract_id": "C-1",
            "amount": "1200000.00", "sign_by": "2026-12-30", "publish_by": "2027-01-04", "refund_status": "ordered", "signed_at": "2026-12-02T02:00:00Z", "clock": "signing",
            "detail": "未在期限内签订合同", "invoice_no": "INV-1", "object_by": "2026-12-10", "outstanding": "300000.00",
            "interest_so_far": "123.45", "due_by": "contract", "paid_on": "2026-12-05", "behaviour": "collusion",
            "legal_basis": "政府采购法第七十七条", "debarred_from": "2026-12-01", "debarred_until": "2027-12-01", "kind": "debarment",
            "proposal_id": "P-1", "record_id": "R-1", "source": "ledger", "bid_opening_time": "2026-12-02T02:00:00Z",
            "rule": "same_payer_account", "bank_serial": "SER-1", "explanation": "x", "valid_from": "2026-12-01",
            "value_time": "2026-12-01T07:00:00Z", "payee_account": "6222020200001234567", "order_id": "O-1", "satisfied": false,
            "loan_id": "ZCD-1", "lender_id": "GZBANK", "rate_bp": 385, "term_days": 180, "rejection_code": "lender_rejected",
            "disbursed_on": "2026-12-03", "maturity_on": "2027-06-01", "account_no": "520100880001", "surplus": "12.30",
            "interest_paid": "1234.56", "days_past_due": 6, "grace_days": 5, "principal_outstanding": "500000.00", "interest_due": "123.45"
        }"#,
        )
        .unwrap()
    }

    #[test]
    fn every_template_renders_its_three_blocks_in_chinese() {
        let templates = Templates::load().unwrap();
        for (name, _) in TEMPLATES {
            let message = Message { recipient: "P".into(), category: Category::Alert, template: name, legal: false, deadline: None, vars: example_vars() };
            let rendered = templates.render(&message).unwrap_or_else(|error| panic!("{name}: {error:#}"));
            for (block, text) in [("subject", &rendered.subject), ("sms", &rendered.sms), ("body", &rendered.body)] {
                assert!(!text.is_empty(), "{name}: {block} is empty");
                assert!(text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{name}: {block} has no Chinese: {text}");
            }
            assert!(!rendered.subject.contains('\n'), "{name}: the subject is one line");
        }
    }

    #[test]
    fn every_event_the_plan_knows_renders_for_each_recipient() {
        let templates = Templates::load().unwrap();
        let events: &[(&str, &[&str])] = &[
            (
                "ledger",
                &[
                    "deposit.received",
                    "deposit.suspended",
                    "refund.ordered",
                    "refund.confirmed",
                    "refund.failed",
                    "deposit.forfeited",
                    "deposit.stale",
                    "suspense.return_failed",
                    "reconciliation.discrepancy",
                    "alert.notice_conflict",
                ],
            ),
            ("guarantee", &["guarantee.issued", "guarantee.claim_paid", "guarantee.fraud_warning"]),
            (
                "contract",
                &[
                    "award.recorded",
                    "contract.signed",
                    "contract.deadline_breached",
                    "invoice.received",
                    "invoice.accepted",
                    "payment.reminder",
                    "payment.overdue",
                    "invoice.paid",
                ],
            ),
            (
                "credit",
                &["credit.proposal_received", "credit.record_confirmed", "credit.proposal_dismissed", "credit.record_repaired", "credit.repair_refused"],
            ),
            ("loans", &["loan.approved", "loan.rejected", "loan.disbursed", "loan.confirmation_requested", "loan.closed", "loan.delinquent", "loan.defaulted"]),
        ];
        let mut vars = example_vars();
        vars["deemed"] = serde_json::Value::Bool(true);
        let mut planned = BTreeSet::new();
        let mut matched = vars.clone();
        matched["status"] = serde_json::Value::from("matched");
        let incoming = crate::domain::plan::Incoming {
            source: "ledger",
            event_type: "deposit.received",
            centre_id: "520100",
            occurred_at: chrono::Utc::now(),
            data: &matched,
        };
        planned.extend(crate::domain::plan::plan(&incoming).into_iter().map(|message| message.template));
        for (source, types) in events {
            for event_type in *types {
                let incoming = crate::domain::plan::Incoming { source, event_type, centre_id: "520100", occurred_at: chrono::Utc::now(), data: &vars };
                let messages = crate::domain::plan::plan(&incoming);
                assert!(!messages.is_empty(), "{source} {event_type} plans nothing");
                for message in messages {
                    templates.render(&message).unwrap_or_else(|error| panic!("{source} {event_type} → {}: {error:#}", message.template));
                    planned.insert(message.template);
                }
            }
        }
        let unused: Vec<&str> = TEMPLATES
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| {
                !planned.contains(name)
                    && !["deposit_reminder", "tender_changed", "reminder_sign_by", "reminder_publish_by", "reminder_object_by"].contains(name)
            })
            .collect();
        assert!(unused.is_empty(), "templates no event uses: {unused:?}");
    }

    #[test]
    fn a_null_field_reads_as_a_dash_and_codes_read_in_chinese() {
        let templates = Templates::load().unwrap();
        let mut vars = example_vars();
        vars["detail"] = serde_json::Value::Null;
        let message =
            Message { recipient: "P".into(), category: Category::Contract, template: "contract_deadline_breached", legal: true, deadline: None, vars };
        let rendered = templates.render(&message).unwrap();
        assert!(rendered.body.contains("说明：—"), "{}", rendered.body);
        assert!(rendered.body.contains("期限：合同签订"), "{}", rendered.body);
        assert!(!rendered.body.contains("none"), "{}", rendered.body);
    }

    #[test]
    fn amounts_are_yuan_to_the_fen_and_times_are_beijing() {
        assert_eq!(yuan(Value::from(123456789)).unwrap(), "1,234,567.89");
        assert_eq!(yuan(Value::from(5)).unwrap(), "0.05");
        assert_eq!(yuan(Value::from(-100)).unwrap(), "-1.00");
        assert_eq!(beijing_time(Value::from("2026-12-01T16:00:00Z")), "2026年12月02日 00:00");
        assert_eq!(beijing_date(Value::from("2026-12-08")), "2026年12月08日");
        assert_eq!(beijing_date(Value::from(())), "—");
        assert_eq!(mask_uscc("91520100MA6DKQ1X2B".into()), "915201********1X2B");
        assert_eq!(in_chinese("collusion".into()), "串通投标");
        assert_eq!(in_chinese("something_new".into()), "something_new");
    }
}

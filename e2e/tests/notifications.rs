//! The notification service against the real PostgreSQL, the broker, the SMTP sink the scripts
//! start and the simulated SMS gateway and webhook receiver: every party told once, on the
//! channels it chose, at the right time.

use chrono::{DateTime, Utc};
use jinfu_e2e::notifications::{self, eventually, mails_to, publish_raw, publish_signed, spawn_notification, TestNotification, WEBHOOK_SECRET};
use jinfu_e2e::{TestApp, CENTRE, CONTRACT_KEY_REF, LEDGER_KEY_REF};
use jinfu_platform::auth::Role;
use jinfu_platform::topics;
use jinfu_proto::notification::v1 as pb;
use serde_json::json;

fn uscc(n: u32) -> String {
    format!("91520100MA{n:07}X", n = n % 10_000_000).chars().take(18).collect()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("an instant").with_timezone(&Utc)
}

/// A party with every contact, its webhook pointed at the receiver.
async fn register(service: &mut TestNotification, gateways: &jinfu_bank_sim::gateways::Gateways, party: &str, phone: &str) -> anyhow::Result<String> {
    let email = format!("{}@bidder.example.cn", uuid::Uuid::new_v4().simple());
    let request = pb::SetContactsRequest {
        party: party.into(),
        email: email.clone(),
        phone: phone.into(),
        webhook_url: gateways.webhook_url(party),
        webhook_secret: WEBHOOK_SECRET.into(),
    };
    service.grpc.set_contacts(service.as_role(Role::Bidder, CENTRE, party, request)).await?;
    Ok(email)
}

fn short_deposit(bidder: &str, section: &str, held: i64, required: i64) -> serde_json::Value {
    json!({
        "bank": "ICBC", "bank_serial": format!("SER-{}", uuid::Uuid::new_v4().simple()), "sub_account_number": "9558800000000001",
        "amount_fen": held, "value_time": "2026-12-01T16:00:00+08:00", "entry_sequence": 7, "section_id": section, "bidder_uscc": bidder,
        "held_fen": held, "required_fen": required, "satisfied": held >= required, "status": if held >= required { "matched" } else { "short" },
    })
}

#[tokio::test]
async fn a_short_deposit_reaches_the_bidder_once_on_every_channel_even_when_the_event_is_redelivered() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let gateways = notifications::gateways().await?;
    let mut service = spawn_notification(notifications::notification_settings(&app, &gateways), Utc::now()).await?;
    let bidder = uscc(4_201);
    let email = register(&mut service, &gateways, &bidder, "+86 138 0013 8001").await?;

    let value = publish_signed(
        &app,
        topics::LEDGER_EVENTS,
        &app.banks.ledger,
        LEDGER_KEY_REF,
        "deposit.received",
        short_deposit(&bidder, "S-N1", 1_000_000, 5_000_000),
    )
    .await?;
    eventually("the SMS, the webhook and the e-mail", || gateways.sms().len() == 1 && gateways.webhooks().len() == 1 && mails_to(&email).len() == 1).await?;

    // The same record again, as a redelivery after a lost offset commit would bring it.
    let topic = app.settings.kafka.topic(topics::LEDGER_EVENTS);
    let mut headers = Vec::new();
    jinfu_platform::signing::Signer::from_settings(&jinfu_platform::signing::SigningSettings {
        key_ref: LEDGER_KEY_REF.into(),
        scheme: jinfu_platform::signing::Scheme::Ed25519,
        private_key: secrecy::SecretString::from(app.banks.ledger.private_key_hex()),
    })?
    .sign_record(&value, &mut headers);
    publish_raw(&app, topics::LEDGER_EVENTS, value, headers).await?;
    service.wait_consumed(&topic, 2).await?;
    // Give the dispatcher rounds to (wrongly) send a second copy, observably: a later event to
    // the same bidder arrives, and the first stays single.
    publish_signed(&app, topics::LEDGER_EVENTS, &app.banks.ledger, LEDGER_KEY_REF, "deposit.received", short_deposit(&bidder, "S-N1", 5_000_000, 5_000_000))
        .await?;
    eventually("the second event's SMS", || gateways.sms().len() == 2).await?;
    eventually("the second event's e-mail", || mails_to(&email).len() == 2).await?;

    let sms = gateways.sms();
    assert_eq!(sms.iter().filter(|message| message.template_code == "JINFU_DEPOSIT_SHORT").count(), 1, "{sms:?}");
    assert_eq!(sms[0].phone, "13800138001");
    assert!(sms[0].template_param.contains("尚差40,000.00元"), "{}", sms[0].template_param);
    let webhook = &gateways.webhooks()[0];
    assert_eq!(webhook.body["type"], "jinfu.deposit_short");
    assert_eq!(webhook.body["data"]["recipient"], bidder.as_str());
    // The receiver verified the signature before keeping it: the sender's signature over the
    // body verifies with the receiver's check, and the same signature over a changed body does not.
    let key = jinfu_notification_service::domain::webhook_key(WEBHOOK_SECRET).expect("a whsec_ secret");
    let sent = webhook.body.to_string();
    let signature = jinfu_notification_service::channels::webhook::signature(WEBHOOK_SECRET, &webhook.id, webhook.timestamp, &sent).expect("a signature");
    let now = Utc::now().timestamp();
    assert!(jinfu_bank_sim::gateways::verify_webhook(&key, &webhook.id, &webhook.timestamp.to_string(), &signature, &sent, now));
    let tampered = sent.replace("40,000.00", "4.00");
    assert_ne!(tampered, sent);
    assert!(!jinfu_bank_sim::gateways::verify_webhook(&key, &webhook.id, &webhook.timestamp.to_string(), &signature, &tampered, now));
    let mail = &mails_to(&email)[0];
    assert!(mail.contains("Message-ID: <") && mail.contains("@jinfu.example.cn>"), "{mail}");

    let inbox = service
        .grpc
        .list_inbox(service.as_role(Role::Bidder, CENTRE, &bidder, pb::ListInboxRequest { party: bidder.clone(), ..Default::default() }))
        .await?
        .into_inner();
    assert_eq!(inbox.messages.len(), 2);
    assert!(inbox.messages.iter().any(|message| message.template == "deposit_short" && message.legal && message.subject.contains("尚差 40,000.00 元")));
    let duplicates: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notification.deliveries WHERE recipient = $1").bind(&bidder).fetch_one(&service.pool).await?;
    assert_eq!(duplicates, 8, "two events × four channels, the redelivery recorded nothing");

    // A party reads only its own inbox; marking read counts down.
    let other = uscc(4_202);
    let denied =
        service.grpc.list_inbox(service.as_role(Role::Bidder, CENTRE, &other, pb::ListInboxRequest { party: bidder.clone(), ..Default::default() })).await;
    assert_eq!(denied.expect_err("another party's inbox").code(), tonic::Code::PermissionDenied);
    let ids = vec![inbox.messages[0].id.clone()];
    service.grpc.mark_read(service.as_role(Role::Bidder, CENTRE, &bidder, pb::MarkReadRequest { party: bidder.clone(), ids })).await?;
    let unread =
        service.grpc.unread_count(service.as_role(Role::Bidder, CENTRE, &bidder, pb::UnreadCountRequest { party: bidder.clone() })).await?.into_inner();
    assert_eq!(unread.unread, 1);
    Ok(())
}

#[tokio::test]
async fn a_service_killed_between_sending_and_recording_an_sms_sends_it_once() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let gateways = notifications::gateways().await?;
    let mut service = spawn_notification(notifications::notification_settings(&app, &gateways), Utc::now()).await?;
    let bidder = uscc(4_301);
    let request = pb::SetContactsRequest { party: bidder.clone(), phone: "13800138002".into(), ..Default::default() };
    service.grpc.set_contacts(service.as_role(Role::Bidder, CENTRE, &bidder, request)).await?;

    gateways.hold_answers(true);
    publish_signed(
        &app,
        topics::LEDGER_EVENTS,
        &app.banks.ledger,
        LEDGER_KEY_REF,
        "refund.failed",
        json!({"section_id": "S-K1", "bidder_uscc": bidder, "order_id": "O-1", "reason": "account_closed", "entry_sequence": 9}),
    )
    .await?;
    eventually("the gateway to accept the SMS (its answer held back)", || gateways.sms().len() == 1).await?;
    service.kill_and_restart().await?;
    gateways.hold_answers(false);
    // The lease (3 s in tests) of the claim the killed process held runs out.
    service.clock.advance(chrono::Duration::seconds(5));

    let state = || async {
        sqlx::query_as::<_, (String, Option<String>, i32)>(
            "SELECT state, provider_id, attempts FROM notification.deliveries WHERE recipient = $1 AND channel = 'sms'",
        )
        .bind(&bidder)
        .fetch_one(&service.pool)
        .await
    };
    jinfu_e2e::wait_until("the SMS recorded as sent after the lease", || async { Ok(state().await?.0 == "sent") }).await?;
    let (_, provider_id, attempts) = state().await?;
    assert_eq!(attempts, 2, "sent again after the lease");
    assert_eq!(gateways.sms().len(), 1, "one SMS reached the phone");
    assert_eq!(gateways.requests().0, 2, "the gateway saw the repeat and absorbed it by OutId");
    assert_eq!(provider_id.as_deref(), Some(gateways.sms()[0].biz_id.as_str()));
    Ok(())
}

#[tokio::test]
async fn preferences_stop_a_channel_but_never_a_legal_notice_and_a_forged_event_is_dead_lettered() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let gateways = notifications::gateways().await?;
    let mut service = spawn_notification(notifications::notification_settings(&app, &gateways), Utc::now()).await?;
    let bidder = uscc(4_401);
    let email = register(&mut service, &gateways, &bidder, "13800138003").await?;
    let off = |category: pb::Category| pb::ChannelPreference { category: category.into(), channel: pb::Channel::Sms.into(), enabled: false };
    let preferences =
        pb::SetPreferencesRequest { party: bidder.clone(), channels: vec![off(pb::Category::Refund)], interest_tags: vec!["centre:520000".into()] };
    service.grpc.set_preferences(service.as_role(Role::Bidder, CENTRE, &bidder, preferences)).await?;
    let bad = pb::SetPreferencesRequest { party: bidder.clone(), channels: vec![], interest_tags: vec!["region:everywhere".into()] };
    let refused = service.grpc.set_preferences(service.as_role(Role::Bidder, CENTRE, &bidder, bad)).await.expect_err("a bad tag");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("interest_tags"), "{}", refused.message());

    // A forged record (no signature) first: dead-lettered, the consumer goes on.
    let forged = jinfu_platform::outbox::event_envelope(
        "refund.failed",
        CENTRE,
        json!({"section_id": "S-P0", "bidder_uscc": bidder, "order_id": "O-0", "reason": "x", "entry_sequence": 1}),
    );
    publish_raw(&app, topics::LEDGER_EVENTS, forged, vec![]).await?;
    let paid = json!({"section_id": "S-P1", "bidder_uscc": bidder, "order_id": "O-2", "principal_fen": 5_000_000, "interest_fen": 1_234, "bank_serial": "B-1", "entry_sequence": 3});
    publish_signed(&app, topics::LEDGER_EVENTS, &app.banks.ledger, LEDGER_KEY_REF, "refund.confirmed", paid).await?;
    let failed = json!({"section_id": "S-P1", "bidder_uscc": bidder, "order_id": "O-3", "reason": "account_closed", "entry_sequence": 4});
    publish_signed(&app, topics::LEDGER_EVENTS, &app.banks.ledger, LEDGER_KEY_REF, "refund.failed", failed).await?;
    service.wait_consumed(&app.settings.kafka.topic(topics::LEDGER_EVENTS), 3).await?;
    eventually("both e-mails", || mails_to(&email).len() == 2).await?;
    eventually("the legal notice's SMS", || gateways.sms().len() == 1).await?;

    let mut deliveries = service.deliveries_of(&bidder).await?;
    deliveries.sort();
    let sms: Vec<&str> = deliveries.iter().filter(|(channel, _, _)| channel == "sms").map(|(_, _, template)| template.as_str()).collect();
    assert_eq!(sms, ["refund_failed"], "the refund SMS was switched off; the failed refund is a legal notice");
    assert_eq!(deliveries.iter().filter(|(_, _, template)| template == "refund_paid").count(), 3, "inbox, e-mail, webhook");
    let dead: (String, i64) = sqlx::query_as("SELECT reason, count(*) FROM notification.dead_letters GROUP BY reason").fetch_one(&service.pool).await?;
    assert!(dead.0.starts_with("missing_signature:") && dead.1 == 1, "{dead:?}");
    let dlq = jinfu_platform::kafka::dlq_topic(topics::LEDGER_EVENTS);
    let published = jinfu_e2e::read_topic(&app.settings.kafka, &dlq, 1, std::time::Duration::from_secs(30)).await?;
    let reason = published[0].1.get(jinfu_platform::kafka::DLQ_REASON_HEADER).map(|value| String::from_utf8_lossy(value).into_owned());
    assert!(reason.as_deref().is_some_and(|reason| reason.starts_with("missing_signature")), "{reason:?}");

    // Interest tags: a province tag hears of a city's tender.
    jinfu_e2e::trading_event(
        &app,
        "S-P9",
        "section.changed",
        json!({"deposit_deadline": "2026-12-20T09:30:00+08:00", "bid_opening_time": "2026-12-21T09:30:00+08:00"}),
    )
    .await?;
    jinfu_e2e::wait_until("the tender notice", || async {
        Ok(service.deliveries_of(&bidder).await?.iter().any(|(channel, _, template)| channel == "inbox" && template == "tender_changed"))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_sms_at_night_waits_for_morning_unless_its_deadline_comes_first() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let gateways = notifications::gateways().await?;
    let mut settings = notifications::notification_settings(&app, &gateways);
    settings.quiet_hours = jinfu_notification_service::settings::QuietHoursSettings { start: "22:00".into(), end: "08:00".into() };
    let night = at("2026-12-03T23:10:00+08:00");
    let service = spawn_notification(settings, night).await?;
    let (purchaser, supplier) = (uscc(4_501), uscc(4_502));
    for party in [&purchaser, &supplier] {
        let request = pb::SetContactsRequest {
            party: party.clone(),
            phone: if *party == purchaser { "13800138004".into() } else { "13800138005".into() },
            ..Default::default()
        };
        service.grpc.clone().set_contacts(service.as_role(Role::Admin, "520000", "jinfu-admin", request)).await?;
    }
    // The purchaser's payment is due by the end of 7 December: it can wait for morning.
    let reminder = json!({"invoice_no": "INV-Q1", "contract_id": "C-Q1", "due_on": "2026-12-07", "due_by": "law", "outstanding": "300000.00", "purchaser_uscc": purchaser, "supplier_uscc": supplier});
    publish_signed(&app, topics::CONTRACT_EVENTS, &app.banks.contract, CONTRACT_KEY_REF, "payment.reminder", reminder).await?;
    // The supplier must sign by the end of today (midnight, inside the quiet window): told now.
    let award = json!({"section_id": "S-Q1", "supplier_uscc": supplier, "awarded_at": "2026-11-20T10:00:00+08:00", "sign_by": "2026-12-03"});
    publish_signed(&app, topics::CONTRACT_EVENTS, &app.banks.contract, CONTRACT_KEY_REF, "award.recorded", award).await?;
    eventually("the urgent SMS", || gateways.sms().len() == 1).await?;
    assert_eq!(gateways.sms()[0].phone, "13800138005");
    let held: (String, DateTime<Utc>) = sqlx::query_as("SELECT state, next_attempt_at FROM notification.deliveries WHERE recipient = $1 AND channel = 'sms'")
        .bind(&purchaser)
        .fetch_one(&service.pool)
        .await?;
    assert_eq!(held, ("pending".to_owned(), at("2026-12-04T08:00:00+08:00")));
    service.clock.set(at("2026-12-04T08:00:01+08:00"));
    eventually("the morning SMS", || gateways.sms().len() == 2).await?;
    assert_eq!(gateways.sms()[1].phone, "13800138004");
    Ok(())
}

#[tokio::test]
async fn a_deposit_reminder_goes_to_the_bidder_still_short_and_not_to_the_one_who_paid() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let gateways = notifications::gateways().await?;
    let start = at("2026-12-08T09:00:00+08:00");
    let service = spawn_notification(notifications::notification_settings(&app, &gateways), start).await?;
    let (short, paid) = (uscc(4_601), uscc(4_602));
    jinfu_e2e::trading_event(&app, "S-R1", "section.changed", json!({"deposit_deadline": "2026-12-10T09:30:00+08:00"})).await?;
    for bidder in [&short, &paid] {
        publish_signed(&app, topics::LEDGER_EVENTS, &app.banks.ledger, LEDGER_KEY_REF, "deposit.received", short_deposit(bidder, "S-R1", 1_000_000, 5_000_000))
            .await?;
    }
    publish_signed(&app, topics::LEDGER_EVENTS, &app.banks.ledger, LEDGER_KEY_REF, "deposit.received", short_deposit(&paid, "S-R1", 5_000_000, 5_000_000))
        .await?;
    service.wait_consumed(&app.settings.kafka.topic(topics::LEDGER_EVENTS), 3).await?;
    service.wait_consumed(&app.settings.kafka.topic(topics::TRADING_EVENTS), 1).await?;
    let reminders = |bidder: String| {
        let pool = service.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM notification.deliveries WHERE recipient = $1 AND template = 'deposit_reminder'")
                .bind(bidder)
                .fetch_one(&pool)
                .await
        }
    };
    assert_eq!(reminders(short.clone()).await?, 0, "two days before the deadline");
    // 23 hours before.
    service.clock.set(at("2026-12-09T10:30:00+08:00"));
    jinfu_e2e::wait_until("the reminder", || async { Ok(reminders(short.clone()).await? == 1) }).await?;
    assert_eq!(reminders(paid.clone()).await?, 0, "the bidder whose deposit arrived is not reminded");
    let body: String =
        sqlx::query_scalar("SELECT body FROM notification.deliveries WHERE recipient = $1 AND template = 'deposit_reminder' AND channel = 'inbox'")
            .bind(&short)
            .fetch_one(&service.pool)
            .await?;
    assert!(body.contains("2026年12月10日 09:30") && body.contains("尚差：40,000.00 元"), "{body}");
    Ok(())
}

#[tokio::test]
async fn a_contract_deadline_is_reminded_the_working_day_before_unless_it_was_met() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let gateways = notifications::gateways().await?;
    let service = spawn_notification(notifications::notification_settings(&app, &gateways), at("2026-12-01T10:00:00+08:00")).await?;
    let (late, prompt, purchaser) = (uscc(4_701), uscc(4_702), uscc(4_703));
    for (section, supplier) in [("S-D1", &late), ("S-D2", &prompt)] {
        let award = json!({"section_id": section, "supplier_uscc": supplier, "awarded_at": "2026-11-30T10:00:00+08:00", "sign_by": "2026-12-07"});
        publish_signed(&app, topics::CONTRACT_EVENTS, &app.banks.contract, CONTRACT_KEY_REF, "award.recorded", award).await?;
    }
    let signed = json!({
        "contract_id": "C-D2", "section_id": "S-D2", "supplier_uscc": prompt, "purchaser_uscc": purchaser, "amount": "1200000.00",
        "signed_at": "2026-12-02T10:00:00+08:00", "sign_by": "2026-12-07", "late": false, "publish_by": "2026-12-04", "file_by": "2026-12-09",
    });
    publish_signed(&app, topics::CONTRACT_EVENTS, &app.banks.contract, CONTRACT_KEY_REF, "contract.signed", signed).await?;
    service.wait_consumed(&app.settings.kafka.topic(topics::CONTRACT_EVENTS), 3).await?;
    let reminded = |party: String, template: &'static str| {
        let pool = service.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM notification.deliveries WHERE recipient = $1 AND template = $2")
                .bind(party)
                .bind(template)
                .fetch_one(&pool)
                .await
        }
    };
    // Signing is due Monday 7 December: reminded on Friday the 4th at 09:00. Publication is due
    // Friday the 4th: reminded on Thursday the 3rd at 09:00.
    assert_eq!(reminded(purchaser.clone(), "reminder_publish_by").await?, 0, "not before its time");
    service.clock.set(at("2026-12-03T09:00:05+08:00"));
    jinfu_e2e::wait_until("the publication reminder", || async { Ok(reminded(purchaser.clone(), "reminder_publish_by").await? == 1) }).await?;
    assert_eq!(reminded(late.clone(), "reminder_sign_by").await?, 0, "the signing reminder waits for Friday");
    service.clock.set(at("2026-12-04T09:00:05+08:00"));
    jinfu_e2e::wait_until("the signing reminder", || async { Ok(reminded(late.clone(), "reminder_sign_by").await? == 1) }).await?;
    assert_eq!(reminded(prompt.clone(), "reminder_sign_by").await?, 0, "the supplier that signed is not reminded");
    let body: String =
        sqlx::query_scalar("SELECT body FROM notification.deliveries WHERE recipient = $1 AND template = 'reminder_sign_by' AND channel = 'inbox'")
            .bind(&late)
            .fetch_one(&service.pool)
            .await?;
    assert!(body.contains("2026年12月07日") && body.contains("S-D1"), "{body}");
    Ok(())
}

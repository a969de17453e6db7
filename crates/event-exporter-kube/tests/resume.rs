//! What a graceful restart resumes from: the tracker's snapshot, through the checkpoint's
//! JSON, into the next term's occurrence filter.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use event_exporter_core::ReceiverId;
use event_exporter_core::sink::{Receipt, ReceiptBoard};
use event_exporter_kube::checkpoint::Checkpoint;
use event_exporter_kube::configmap::MAX_DATA_BYTES;
use event_exporter_kube::occurrence::{OccurrenceFilter, Phase, UidKey, Verdict};
use event_exporter_kube::progress::{Progress, Resume};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

const UID: &str = "0b7b0d5e-0000-4000-8000-000000000001";

fn names() -> Vec<String> {
    vec!["r1".into(), "r2".into()]
}

fn tracker(mark: u64) -> Progress {
    Progress::new(
        Resume {
            marks: vec![Some(mark)],
            ..Resume::default()
        },
        4096,
    )
}

/// Exports `key` to r1 and r2: their receipts.
fn export(
    p: &mut Progress,
    rv: Option<u64>,
    list_rv: Option<u64>,
    key: (UidKey, u32),
) -> [Receipt; 2] {
    let board = ReceiptBoard::new(2);
    let receipts = [board.receipt(0), board.receipt(1)];
    p.exported(
        0,
        rv,
        list_rv,
        key,
        board,
        [ReceiverId(0), ReceiverId(1)].into_iter().collect(),
    );
    receipts
}

/// The checkpoint a stop writes now, as the next start reads it.
fn saved(p: &mut Progress) -> Checkpoint {
    let cp = Checkpoint::from_progress(&[String::new()], &p.snapshot(), &names(), "a");
    Checkpoint::parse(&serde_json::to_string(&cp).unwrap(), "t").unwrap()
}

#[test]
fn a_later_occurrence_a_receiver_finished_is_resent_only_to_the_one_that_did_not() {
    // r1 is stuck; occurrences 3 and 4 of one event go out in the live watch; r2 sends both.
    let mut p = tracker(10);
    let u = UidKey::of(UID);
    let [r1_3, r2_3] = export(&mut p, Some(11), None, (u, 3));
    let [r1_4, r2_4] = export(&mut p, Some(12), None, (u, 4));
    drop((r2_3, r2_4));
    let cp = saved(&mut p);
    let mut f = OccurrenceFilter::new(&cp.watermarks(&[String::new()]), cp.recent(), 100, 5_000)
        .with_pending(cp.pending_for(&names()));
    f.relisting(0);
    let event = CoreEvent {
        metadata: ObjectMeta {
            uid: Some(UID.into()),
            resource_version: Some("12".into()),
            ..Default::default()
        },
        count: Some(4),
        ..Default::default()
    };
    assert_eq!(
        f.decide(0, Phase::Listing, &event, 0),
        Verdict::Resend(vec![ReceiverId(0)]),
        "r2 has occurrence 4 already"
    );
    drop((r1_3, r1_4));
}

#[test]
fn a_checkpoint_in_the_middle_of_a_huge_catch_up_fits_a_configmap() {
    // 100k exports of a list with sparse 9-digit resourceVersions, all finished, the list not
    // ended; plus a thousand stuck deliveries.
    let mut p = tracker(100_000_000);
    let mut stuck = Vec::new();
    for i in 0..100_000u64 {
        let receipts = export(
            &mut p,
            None,
            Some(100_000_001 + 3 * i),
            (UidKey(u128::from(i) + 1), 1),
        );
        if i % 100 == 0 {
            stuck.push(receipts);
        }
        if i % 1024 == 0 {
            p.advance();
        }
    }
    let cp = saved(&mut p);
    let len = serde_json::to_string(&cp).unwrap().len();
    assert!(len <= MAX_DATA_BYTES, "{len} bytes");
    assert_eq!(cp.pending.len(), 1000);
    assert!(!cp.list_handled(&[String::new()])[0].is_empty());
}

#[test]
fn a_delivery_finishing_during_a_snapshot_is_never_pending_for_every_receiver() {
    // Receipts are dropped on another thread while snapshots are taken.
    let (tx, rx) = std::sync::mpsc::channel::<(Receipt, u32)>();
    let worker = std::thread::spawn(move || {
        for (receipt, spin) in rx {
            for _ in 0..spin {
                std::hint::spin_loop();
            }
            drop(receipt);
        }
    });
    let mut p = tracker(0);
    for i in 0..20_000u32 {
        let board = ReceiptBoard::new(1);
        let receipt = board.receipt(0);
        p.exported(
            0,
            Some(u64::from(i) + 1),
            None,
            (UidKey(u128::from(i)), 1),
            board,
            [ReceiverId(1)].into_iter().collect(),
        );
        tx.send((receipt, i % 400)).unwrap();
        let s = p.snapshot();
        assert!(
            s.pending.iter().all(|(_, owed)| !owed.is_empty()),
            "a finished delivery recorded as owed by every receiver"
        );
    }
    drop(tx);
    worker.join().unwrap();
}

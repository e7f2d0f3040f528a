//! A write after a snapshot copies a bounded piece of the table — never the
//! whole map — and taking a snapshot copies no entries. Checked by counting
//! copied pages and chunks, not by timing.
use mapcore::engine::{Map, Options};

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    k
}

#[test]
fn writes_after_a_snapshot_copy_at_most_a_page_or_two() {
    let n = 200_000u64;
    let m = Map::new(&Options {
        seed: Some(1),
        capacity: n as usize * 2,
        ..Options::default()
    })
    .unwrap();
    for i in 0..n {
        m.insert(&key(i), &[1u8; 32]).unwrap();
    }
    let before = m.stats();
    let snap = m.snapshot().unwrap();
    assert_eq!(m.stats(), before, "taking a snapshot copies nothing");
    // Overwrites (no growth, presized): each copies at most the pages its run touches.
    for (round, i) in (0..50u64).enumerate() {
        let pre = m.stats();
        m.insert(&key(i * 997), &[2u8; 32]).unwrap();
        let post = m.stats();
        assert!(
            post.cow_pages - pre.cow_pages <= 2,
            "round {round}: copied {} pages",
            post.cow_pages - pre.cow_pages
        );
        assert!(
            post.arena_chunks - pre.arena_chunks <= 1,
            "at most one fresh arena chunk"
        );
    }
    // New keys (still within the reserved capacity) as well.
    for i in n..n + 50 {
        let pre = m.stats();
        m.insert(&key(i), &[3u8; 32]).unwrap();
        let post = m.stats();
        assert!(post.cow_pages - pre.cow_pages <= 2);
    }
    // Deletes too.
    for i in 1000..1050 {
        let pre = m.stats();
        assert!(m.remove(&key(i)).unwrap());
        assert!(m.stats().cow_pages - pre.cow_pages <= 2);
    }
    assert!(
        m.stats().cow_pages <= 2 * 150,
        "each write copies at most two pages"
    );
    // The snapshot still sees the old state.
    assert_eq!(snap.len(), n as usize);
    assert_eq!(snap.get(&key(0)).unwrap(), vec![1u8; 32]);
    assert_eq!(snap.get(&key(1000)).unwrap(), vec![1u8; 32]);
    assert!(snap.get(&key(n)).is_none());
    drop(snap);
    // Without a snapshot, writes copy nothing.
    let pre = m.stats();
    for i in 0..100 {
        m.insert(&key(i), &[4u8; 32]).unwrap();
    }
    assert_eq!(m.stats().cow_pages, pre.cow_pages);
}

/// A snapshot taken before every write: writes never append to a chunk a
/// snapshot shares, so each one opens a small chunk. The count must stay
/// bounded (snapshots clone the chunk list, and locations can address only
/// so many chunks) while every snapshot keeps its own state.
#[test]
fn a_snapshot_before_every_write_keeps_the_chunk_count_bounded() {
    let m = Map::new(&Options {
        seed: Some(2),
        ..Options::default()
    })
    .unwrap();
    let mut kept = Vec::new();
    let mut most = 0;
    for i in 0..40_000u64 {
        let snap = m.snapshot().unwrap();
        m.insert(&key(i), &i.to_le_bytes()).unwrap();
        most = most.max(m.stats().arena_chunks);
        if i % 10_000 == 0 {
            kept.push((i, snap));
        }
    }
    // 16 shards, each repacked once it holds 256 chunks and twice its
    // last fresh layout's count (a few chunks for 2,500 entries).
    assert!(most <= 16 * 260, "{most} chunks");
    assert!(most > 16 * 100, "the writes did open a chunk each ({most})");
    for (i, snap) in &kept {
        assert_eq!(snap.len(), *i as usize);
        for j in (0..*i).step_by(97) {
            assert_eq!(snap.get(&key(j)).unwrap(), j.to_le_bytes().to_vec());
        }
        assert!(snap.get(&key(*i)).is_none());
    }
    for i in (0..40_000u64).step_by(89) {
        assert_eq!(m.get(&key(i)).unwrap(), i.to_le_bytes().to_vec());
    }
}

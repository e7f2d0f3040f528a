//! Calls libmapcore.so only through bindings bindgen generated from the
//! committed header. If the header and the Rust ABI disagree on a signature,
//! a constant or a layout, these tests fail to build or fail.
// SAFETY (every unsafe block in this file): it calls the C ABI with pointers
// to live local buffers and their exact lengths, as the header requires.
use abi_check::*;
use std::ptr::{null, null_mut};

#[test]
fn layouts_agree_between_c_header_and_rust() {
    unsafe {
        assert_eq!(abi_sizeof_iter(), std::mem::size_of::<mc_iter>());
        assert_eq!(abi_sizeof_iter(), 48);
        assert_eq!(abi_sizeof_options(), std::mem::size_of::<mc_options>());
        assert_eq!(abi_sizeof_map(), 8);
        assert_eq!(
            abi_offsetof_capacity(),
            std::mem::offset_of!(mc_options, capacity)
        );
        assert_eq!(mc_abi_version(), MC_ABI_VERSION);
    }
}

#[test]
fn crud_iteration_and_callbacks_through_the_header() {
    unsafe {
        let mut m = mc_map { id: 0 };
        assert_eq!(mc_map_new(&mut m), mc_status_MC_OK);
        for (k, v) in [("a", "keep"), ("b", "drop"), ("c", "keep"), ("", "drop")] {
            let mut ins = false;
            assert_eq!(
                mc_map_set(m, k.as_ptr(), k.len(), v.as_ptr(), v.len(), &mut ins),
                0
            );
            assert!(ins);
        }
        let mut it: mc_iter = std::mem::zeroed();
        assert_eq!(mc_iter_init(m, MC_MODE_STRICT, &mut it), 0);
        let mut n = 0;
        let (mut kb, mut vb) = ([0u8; 8], [0u8; 8]);
        loop {
            let (mut kl, mut vl) = (0, 0);
            let s = mc_iter_next(
                m,
                &mut it,
                kb.as_mut_ptr(),
                8,
                &mut kl,
                vb.as_mut_ptr(),
                8,
                &mut vl,
            );
            if s == mc_status_MC_DONE {
                break;
            }
            assert_eq!(s, 0);
            n += 1;
        }
        assert_eq!(n, 4);
        let mut calls = 0usize;
        let mut removed = 0usize;
        let s = mc_map_retain(
            m,
            Some(abi_keep_k),
            (&mut calls as *mut usize).cast(),
            &mut removed,
        );
        assert_eq!(s, 0);
        assert_eq!((calls, removed), (4, 2));
        let mut out = [0u8; 64];
        assert_eq!(
            mc_map_get_with(
                m,
                "a".as_ptr(),
                1,
                Some(abi_copy_value),
                out.as_mut_ptr().cast()
            ),
            0
        );
        assert_eq!(&out[..5], b"keep\0");
        assert_eq!(
            mc_map_get_with(
                m,
                "b".as_ptr(),
                1,
                Some(abi_copy_value),
                out.as_mut_ptr().cast()
            ),
            mc_status_MC_ERR_NOT_FOUND
        );
        assert_eq!(mc_map_free(m), 0);
        assert_eq!(mc_map_free(m), mc_status_MC_ERR_BAD_HANDLE);
        assert_eq!(mc_map_len(m, null_mut()), mc_status_MC_ERR_BAD_HANDLE);
        let name = std::ffi::CStr::from_ptr(mc_status_name(mc_status_MC_ERR_WRONG_MAP));
        assert_eq!(name.to_str().unwrap(), "MC_ERR_WRONG_MAP");
        let _ = null::<u8>();
    }
}

#[test]
fn snapshot_and_text_tokens_through_the_header() {
    unsafe {
        let mut m = mc_map { id: 0 };
        let opts = mc_options {
            flags: MC_OPT_FIXED_SEED,
            reserved: 0,
            seed: 99,
            capacity: 100,
        };
        assert_eq!(mc_map_new_with(&opts, &mut m), 0);
        for i in 0..100u32 {
            let k = i.to_le_bytes();
            assert_eq!(mc_map_set(m, k.as_ptr(), 4, k.as_ptr(), 4, null_mut()), 0);
        }
        let mut s = mc_snapshot { id: 0 };
        assert_eq!(mc_snapshot_new(m, &mut s), 0);
        assert_eq!(mc_map_clear(m), 0);
        let mut it: mc_iter = std::mem::zeroed();
        assert_eq!(mc_snapshot_iter_init(s, MC_MODE_CURSOR, &mut it), 0);
        let mut text = [0 as core::ffi::c_char; MC_ITER_TEXT_LEN as usize + 1];
        let mut len = 0;
        assert_eq!(
            mc_snapshot_iter_encode(s, &it, text.as_mut_ptr(), text.len(), &mut len),
            0
        );
        assert_eq!(len, MC_ITER_TEXT_LEN as usize);
        let mut it2: mc_iter = std::mem::zeroed();
        assert_eq!(mc_snapshot_iter_decode(s, text.as_ptr(), len, &mut it2), 0);
        let mut buf = vec![0u8; 4096];
        let (mut count, mut used) = (0, 0);
        assert_eq!(
            mc_snapshot_iter_next_batch(
                s,
                &mut it2,
                buf.as_mut_ptr(),
                buf.len(),
                1000,
                &mut count,
                &mut used
            ),
            0
        );
        assert_eq!(count, 100);
        assert_eq!(used, 100 * (MC_BATCH_ENTRY_HEADER as usize + 8));
        assert_eq!(
            mc_iter_decode(m, text.as_ptr(), len, &mut it2),
            mc_status_MC_ERR_WRONG_MAP
        );
        assert_eq!(mc_snapshot_free(s), 0);
        assert_eq!(mc_map_free(m), 0);
    }
}

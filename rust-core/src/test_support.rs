//! Helpers shared by the crate's unit tests.

/// Runs `threads` threads one after another, each of which calls `at_exit`
/// only from a pthread-key destructor while it exits: the situation of a C
/// program calling the library from its own thread-exit clean-up.
pub fn call_only_during_thread_exit(threads: usize, at_exit: extern "C" fn(*mut libc::c_void)) {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: valid out-pointer and destructor.
    let made = unsafe { libc::pthread_key_create(&mut key, Some(at_exit)) };
    assert_eq!(made, 0);
    for _ in 0..threads {
        std::thread::spawn(move || {
            // SAFETY: a key made above; any non-NULL value makes its
            // destructor run when the thread exits.
            unsafe { libc::pthread_setspecific(key, 1 as *const libc::c_void) };
        })
        .join()
        .unwrap();
    }
    // SAFETY: every thread that used the key has exited.
    unsafe { libc::pthread_key_delete(key) };
}

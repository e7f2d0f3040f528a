//! Reads the environment switches the library honours without allocating:
//! `std::env::var_os` copies a value into memory it allocates and aborts
//! the process when it cannot, and these are read on paths that must
//! report out-of-memory instead (map creation, the memory pool).

use std::ffi::CStr;

/// Whether the environment variable `name` is set to exactly `1`.
pub(crate) fn is_one(name: &CStr) -> bool {
    #[cfg(unix)]
    {
        // SAFETY: `name` is NUL-terminated; the value, if any, is a
        // NUL-terminated string that is read at once (as `var_os` would,
        // which no more than this guards against C code's `setenv`).
        let value = unsafe {
            let v = libc::getenv(name.as_ptr());
            (!v.is_null()).then(|| CStr::from_ptr(v))
        };
        means_one(value)
    }
    #[cfg(not(unix))]
    {
        let _ = name;
        false
    }
}

/// Whether a variable's value (None: unset) switches its feature on.
fn means_one(value: Option<&CStr>) -> bool {
    value == Some(c"1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exactly_one_switches_on() {
        assert!(!means_one(None));
        assert!(!means_one(Some(c"0")));
        assert!(!means_one(Some(c"yes")));
        assert!(!means_one(Some(c"11")));
        assert!(means_one(Some(c"1")));
    }
}

//! The one status enum shared by the engine and the C ABI.
#![forbid(unsafe_code)]

/// Result of every fallible mapcore function. `MC_OK` (0) is success; every
/// other value names one failure. Values are stable across ABI version 1.
#[repr(i32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum McStatus {
    /// Success.
    MC_OK = 0,
    /// The key (or the entry an iterator points at) does not exist.
    MC_ERR_NOT_FOUND = 1,
    /// The map or snapshot handle is zero, freed, of the wrong kind, or garbage.
    MC_ERR_BAD_HANDLE = 2,
    /// A strict iterator saw a structural change it did not make itself.
    MC_ERR_ITER_INVALIDATED = 3,
    /// The iterator token is corrupted, forged, malformed or uninitialised.
    MC_ERR_BAD_TOKEN = 4,
    /// The iterator token belongs to another map or snapshot (possibly a freed one).
    MC_ERR_WRONG_MAP = 5,
    /// The caller's buffer is too small; the required length was written, nothing else.
    MC_ERR_BUFFER_TOO_SMALL = 6,
    /// A required pointer argument was NULL.
    MC_ERR_NULL_ARGUMENT = 7,
    /// A key, value, batch or capacity exceeds a documented limit.
    MC_ERR_TOO_LARGE = 8,
    /// Memory could not be allocated; the map is unchanged.
    MC_ERR_OUT_OF_MEMORY = 9,
    /// An internal error (a caught panic). The map is marked poisoned.
    MC_ERR_INTERNAL = 10,
    /// An integer argument (mode, flag, option) has an unknown value.
    MC_ERR_INVALID_ARGUMENT = 11,
    /// A callback called back into the map that is running it.
    MC_ERR_REENTRANT = 12,
    /// The map was poisoned by an earlier internal error, or (in a forked
    /// child) was in use at the fork; only free is allowed.
    MC_ERR_POISONED = 13,
    /// Not an error: the iteration is complete and no entry was returned.
    MC_DONE = 14,
}

use McStatus::*;

impl McStatus {
    /// Every status, in code order. Not exported to the C header (the enum
    /// already is; a `#define` of a brace list is of no use to C callers):
    /// cbindgen:ignore
    pub const ALL: [McStatus; 15] = [
        MC_OK,
        MC_ERR_NOT_FOUND,
        MC_ERR_BAD_HANDLE,
        MC_ERR_ITER_INVALIDATED,
        MC_ERR_BAD_TOKEN,
        MC_ERR_WRONG_MAP,
        MC_ERR_BUFFER_TOO_SMALL,
        MC_ERR_NULL_ARGUMENT,
        MC_ERR_TOO_LARGE,
        MC_ERR_OUT_OF_MEMORY,
        MC_ERR_INTERNAL,
        MC_ERR_INVALID_ARGUMENT,
        MC_ERR_REENTRANT,
        MC_ERR_POISONED,
        MC_DONE,
    ];

    /// Checked conversion from a plain integer coming from C; never transmutes.
    pub fn from_code(code: i32) -> Option<McStatus> {
        McStatus::ALL.iter().copied().find(|s| *s as i32 == code)
    }

    /// The constant's name, NUL-terminated for C.
    pub fn name(self) -> &'static str {
        match self {
            MC_OK => "MC_OK\0",
            MC_ERR_NOT_FOUND => "MC_ERR_NOT_FOUND\0",
            MC_ERR_BAD_HANDLE => "MC_ERR_BAD_HANDLE\0",
            MC_ERR_ITER_INVALIDATED => "MC_ERR_ITER_INVALIDATED\0",
            MC_ERR_BAD_TOKEN => "MC_ERR_BAD_TOKEN\0",
            MC_ERR_WRONG_MAP => "MC_ERR_WRONG_MAP\0",
            MC_ERR_BUFFER_TOO_SMALL => "MC_ERR_BUFFER_TOO_SMALL\0",
            MC_ERR_NULL_ARGUMENT => "MC_ERR_NULL_ARGUMENT\0",
            MC_ERR_TOO_LARGE => "MC_ERR_TOO_LARGE\0",
            MC_ERR_OUT_OF_MEMORY => "MC_ERR_OUT_OF_MEMORY\0",
            MC_ERR_INTERNAL => "MC_ERR_INTERNAL\0",
            MC_ERR_INVALID_ARGUMENT => "MC_ERR_INVALID_ARGUMENT\0",
            MC_ERR_REENTRANT => "MC_ERR_REENTRANT\0",
            MC_ERR_POISONED => "MC_ERR_POISONED\0",
            MC_DONE => "MC_DONE\0",
        }
    }

    /// A one-line description, NUL-terminated for C.
    pub fn description(self) -> &'static str {
        match self {
            MC_OK => "success\0",
            MC_ERR_NOT_FOUND => "key not found\0",
            MC_ERR_BAD_HANDLE => "invalid, freed or wrong-kind handle\0",
            MC_ERR_ITER_INVALIDATED => "strict iterator invalidated by a structural change\0",
            MC_ERR_BAD_TOKEN => "corrupted, forged or malformed iterator token\0",
            MC_ERR_WRONG_MAP => "iterator token belongs to another map or snapshot\0",
            MC_ERR_BUFFER_TOO_SMALL => "buffer too small; required length reported\0",
            MC_ERR_NULL_ARGUMENT => "required pointer argument is NULL\0",
            MC_ERR_TOO_LARGE => "argument exceeds a documented size limit\0",
            MC_ERR_OUT_OF_MEMORY => "out of memory\0",
            MC_ERR_INTERNAL => "internal error (caught panic)\0",
            MC_ERR_INVALID_ARGUMENT => "invalid argument (unknown mode, flag or option; zero max_entries; malformed batch; refused key)\0",
            MC_ERR_REENTRANT => "callback re-entered the map that is running it\0",
            MC_ERR_POISONED => "map poisoned by an earlier internal error or a fork\0",
            MC_DONE => "iteration complete; no more entries\0",
        }
    }

    pub fn trimmed_name(self) -> &'static str {
        self.name().trim_end_matches('\0')
    }
}

/// Engine-level error: a status plus a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: McStatus,
    /// Static for the common errors, so failing calls (a miss) do not allocate.
    pub detail: std::borrow::Cow<'static, str>,
}

impl Error {
    pub fn new(status: McStatus, detail: impl Into<std::borrow::Cow<'static, str>>) -> Error {
        Error {
            status,
            detail: detail.into(),
        }
    }

    /// An error whose detail is formatted without an allocation that could
    /// abort: into a buffer on the stack (cut at `FORMATTED_CAP` bytes),
    /// then copied into a string allocated fallibly. Without the memory,
    /// the detail is the status's static description: reporting an error
    /// while memory runs out must not abort the process.
    pub fn formatted(status: McStatus, args: std::fmt::Arguments<'_>) -> Error {
        let mut buf = StackText::default();
        let _ = std::fmt::write(&mut buf, args);
        let text = buf.as_str();
        let mut owned = String::new();
        let detail = match owned.try_reserve_exact(text.len()) {
            Ok(()) => {
                owned.push_str(text);
                std::borrow::Cow::Owned(owned)
            }
            Err(_) => std::borrow::Cow::Borrowed(status.description().trim_end_matches('\0')),
        };
        Error { status, detail }
    }
}

/// Longest formatted detail (`Error::formatted`) in bytes; longer ones are
/// cut at a character boundary.
pub const FORMATTED_CAP: usize = 256;

/// A `fmt::Write` into a fixed buffer that keeps what fits.
pub struct StackText {
    buf: [u8; FORMATTED_CAP],
    len: usize,
}

impl Default for StackText {
    fn default() -> StackText {
        StackText {
            buf: [0; FORMATTED_CAP],
            len: 0,
        }
    }
}

impl StackText {
    pub fn as_str(&self) -> &str {
        // Only whole characters are copied in (see `write_str`).
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = FORMATTED_CAP - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status.trimmed_name(), self.detail)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

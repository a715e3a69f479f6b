//! The account the process runs as: user and group database lookups
//! (getpwnam_r(3), getgrnam_r(3)) and the one-way switch away from root.

use std::ffi::CString;
use std::io;
use std::mem;
use std::ptr;

use libc::c_int;

/// A user's ids, from the user database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UserIds {
    /// The user id.
    pub uid: u32,
    /// The user's primary group id.
    pub gid: u32,
}

/// The effective user and group ids of the process.
pub(crate) fn current_ids() -> (u32, u32) {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// Errors of the getpw*_r / getgr*_r family that mean "no such entry"
/// rather than a failure (getpwnam_r(3), NOTES).
fn is_not_found(rc: c_int) -> bool {
    matches!(rc, libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM)
}

/// Largest buffer offered to the getpw*_r / getgr*_r calls: a group with
/// thousands of members needs a few hundred KiB.
const MAX_DATABASE_BUF: usize = 1 << 20;

/// Calls a reentrant user or group database lookup with a growing buffer.
/// `call` gets the buffer and reports whether an entry was found; ERANGE
/// means the buffer was too small.
fn with_database_buf(mut call: impl FnMut(&mut [u8]) -> (c_int, bool)) -> io::Result<bool> {
    let mut buf = vec![0u8; 1024];
    loop {
        match call(&mut buf) {
            (0, found) => return Ok(found),
            (libc::ERANGE, _) if buf.len() < MAX_DATABASE_BUF => {
                let len = buf.len() * 2;
                buf.resize(len, 0);
            }
            (rc, _) if is_not_found(rc) => return Ok(false),
            (rc, _) => return Err(io::Error::from_raw_os_error(rc)),
        }
    }
}

/// Looks a user up by name (getpwnam_r(3)); a name that is a number and
/// not a user name is taken as a uid (getpwuid_r(3)), and when no entry
/// has that uid either, its primary group is the same number, as usual
/// for container images without a user database.
pub(crate) fn lookup_user(name: &str) -> io::Result<Option<UserIds>> {
    let lookup = |by_name: Option<&CString>, uid: u32| -> io::Result<Option<UserIds>> {
        let mut ids = None;
        let found = with_database_buf(|buf| {
            // SAFETY: passwd is a C struct of pointers and integers; all
            // zeroes is a valid value for getpw*_r to overwrite.
            let mut entry: libc::passwd = unsafe { mem::zeroed() };
            let mut result: *mut libc::passwd = ptr::null_mut();
            // SAFETY: the name is a NUL-terminated string, `entry` and
            // `result` are live locals, and `buf` is writable for its whole
            // length, which we pass; the strings the call stores point
            // into `buf`, and we read only the two integers.
            let rc = unsafe {
                match by_name {
                    Some(name) => libc::getpwnam_r(
                        name.as_ptr(),
                        &mut entry,
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        &mut result,
                    ),
                    None => libc::getpwuid_r(
                        uid,
                        &mut entry,
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        &mut result,
                    ),
                }
            };
            if rc == 0 && !result.is_null() {
                ids = Some(UserIds {
                    uid: entry.pw_uid,
                    gid: entry.pw_gid,
                });
            }
            (rc, !result.is_null())
        })?;
        Ok(ids.filter(|_| found))
    };
    // A name with a NUL byte names no user.
    let Ok(cname) = CString::new(name) else {
        return Ok(None);
    };
    if let Some(ids) = lookup(Some(&cname), 0)? {
        return Ok(Some(ids));
    }
    match name.parse::<u32>() {
        Ok(uid) => Ok(Some(
            lookup(None, uid)?.unwrap_or(UserIds { uid, gid: uid }),
        )),
        Err(_) => Ok(None),
    }
}

/// Looks a group up by name (getgrnam_r(3)); a number that is not a group
/// name is taken as a gid.
pub(crate) fn lookup_group(name: &str) -> io::Result<Option<u32>> {
    let Ok(cname) = CString::new(name) else {
        return Ok(None);
    };
    let mut gid = None;
    let found = with_database_buf(|buf| {
        // SAFETY: group is a C struct of pointers and integers; all zeroes
        // is a valid value for getgrnam_r to overwrite.
        let mut entry: libc::group = unsafe { mem::zeroed() };
        let mut result: *mut libc::group = ptr::null_mut();
        // SAFETY: as in lookup_user: a NUL-terminated name, live locals,
        // and a buffer writable for the length we pass.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut entry,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == 0 && !result.is_null() {
            gid = Some(entry.gr_gid);
        }
        (rc, !result.is_null())
    })?;
    if found {
        return Ok(gid);
    }
    Ok(name.parse::<u32>().ok())
}

/// Switches the whole process to `uid` and `gid` for good: supplementary
/// groups cleared, then the group, then the user (the user last, since
/// only root may change groups). glibc applies each call to every thread
/// (setuid(2), NOTES). Leaving root also clears every capability
/// (capabilities(7)). Already running as exactly that user and group (say,
/// started by systemd with `User=`) is not an error.
pub(crate) fn switch_ids(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY (all blocks below): these calls take plain integers, or one
    // pointer to a live gid_t with its count; none has other preconditions.
    let real = unsafe { (libc::getuid(), libc::getgid()) };
    if real == (uid, gid) && current_ids() == (uid, gid) {
        return Ok(());
    }
    let groups = [gid];
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if unsafe { libc::setgid(gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if unsafe { libc::setuid(uid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // Trust, but verify: every id changed, and root cannot be regained.
    let real = unsafe { (libc::getuid(), libc::getgid()) };
    if real != (uid, gid) || current_ids() != (uid, gid) {
        return Err(io::Error::other("the ids did not change"));
    }
    if uid != 0 && unsafe { libc::setuid(0) } == 0 {
        return Err(io::Error::other("root could be regained"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_group_lookups() {
        assert_eq!(
            lookup_user("root").unwrap(),
            Some(UserIds { uid: 0, gid: 0 })
        );
        assert_eq!(lookup_group("root").unwrap(), Some(0));
        assert_eq!(lookup_user("no-such-user-here").unwrap(), None);
        assert_eq!(lookup_group("no-such-group-here").unwrap(), None);
        assert_eq!(lookup_user("nul\0byte").unwrap(), None);
        // Numeric ids without an entry.
        assert_eq!(
            lookup_user("4000000000").unwrap(),
            Some(UserIds {
                uid: 4_000_000_000,
                gid: 4_000_000_000
            })
        );
        assert_eq!(lookup_group("4000000000").unwrap(), Some(4_000_000_000));
        // Already the target: nothing to do, so no error even unprivileged.
        let (uid, gid) = current_ids();
        // SAFETY: no preconditions.
        let real = unsafe { (libc::getuid(), libc::getgid()) };
        if real == (uid, gid) {
            switch_ids(uid, gid).unwrap();
        }
    }
}

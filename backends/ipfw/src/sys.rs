//! The `IP_FW3` socket and `kern.osreldate`: FreeBSD only. Elsewhere
//! [`open_tables`] says ipfw does not exist here, and the rest of the crate
//! still compiles and is tested against models.

use banset_core::{BackendError, ErrorKind};

use crate::tables::Tables;

#[cfg(target_os = "freebsd")]
mod imp {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use crate::msg::IP_FW3;
    use crate::tables::Sockopt;

    /// A raw IPv4 socket: the handle ipfw's socket options are set on.
    #[derive(Debug)]
    pub struct RawSocket(OwnedFd);

    impl RawSocket {
        pub fn open() -> Result<RawSocket, i32> {
            // SAFETY: plain socket(2); the result is checked.
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
            if fd < 0 {
                return Err(errno());
            }
            // SAFETY: fd was just created and is owned by nobody else.
            Ok(RawSocket(unsafe { OwnedFd::from_raw_fd(fd) }))
        }
    }

    impl Sockopt for RawSocket {
        fn set(&self, buf: &[u8]) -> Result<(), i32> {
            // SAFETY: buf is readable for its length.
            let r = unsafe {
                libc::setsockopt(
                    self.0.as_raw_fd(),
                    libc::IPPROTO_IP,
                    IP_FW3,
                    buf.as_ptr().cast(),
                    buf.len() as libc::socklen_t,
                )
            };
            if r == 0 {
                Ok(())
            } else {
                Err(errno())
            }
        }

        fn get(&self, buf: &mut [u8]) -> Result<usize, i32> {
            let mut len = buf.len() as libc::socklen_t;
            // SAFETY: buf is writable for len bytes; the kernel writes at
            // most that and stores the length it wrote.
            let r = unsafe {
                libc::getsockopt(
                    self.0.as_raw_fd(),
                    libc::IPPROTO_IP,
                    IP_FW3,
                    buf.as_mut_ptr().cast(),
                    &mut len,
                )
            };
            if r == 0 {
                Ok(len as usize)
            } else {
                Err(errno())
            }
        }
    }

    fn errno() -> i32 {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    }

    /// `kern.osreldate`, e.g. 1403000 for 14.3.
    pub fn osreldate() -> Option<u32> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>();
        let name = b"kern.osreldate\0";
        // SAFETY: value and len describe a writable int; nothing is set.
        let r = unsafe {
            libc::sysctlbyname(
                name.as_ptr().cast(),
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
                std::ptr::null(),
                0,
            )
        };
        (r == 0).then_some(value as u32)
    }
}

/// The tables of the running kernel: native on FreeBSD 11–14, the `ipfw`
/// command on 15 and later.
#[cfg(target_os = "freebsd")]
pub fn open_tables() -> Result<Box<dyn Tables>, BackendError> {
    use crate::msg::Abi;
    use crate::rule::Ipfw;
    use crate::tables::{Command, Native};

    let osreldate = imp::osreldate().ok_or_else(|| {
        BackendError::new(
            ErrorKind::Other,
            "read kern.osreldate",
            "sysctl failed; cannot tell which ipfw ABI this kernel has",
        )
    })?;
    match Abi::from_osreldate(osreldate) {
        Some(Abi::Fbsd11To14) => {
            let sock = imp::RawSocket::open().map_err(|errno| {
                let e = BackendError::from_errno(errno, "open the ipfw socket");
                if e.kind() == ErrorKind::Permission {
                    BackendError::new(ErrorKind::Permission, e.context(), "run as root")
                } else {
                    e
                }
            })?;
            Ok(Box::new(Native::new(sock)))
        }
        Some(Abi::Fbsd15) => Ok(Box::new(Command::new(Ipfw))),
        None => Err(BackendError::new(
            ErrorKind::Unsupported,
            "ipfw",
            format!("FreeBSD {osreldate} (kern.osreldate) is older than 11.0, which banset does not support"),
        )),
    }
}

/// Off FreeBSD there is no ipfw.
#[cfg(not(target_os = "freebsd"))]
pub fn open_tables() -> Result<Box<dyn Tables>, BackendError> {
    Err(BackendError::new(
        ErrorKind::Unsupported,
        "open ipfw",
        "ipfw exists only on FreeBSD",
    ))
}

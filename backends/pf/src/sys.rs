//! `/dev/pf` itself: FreeBSD only. Elsewhere [`DevPf::open`] says pf does
//! not exist here, and the rest of the crate still compiles and is tested
//! against a model of the device.

use crate::table::Device;

/// Why `/dev/pf` could not be opened.
#[derive(Debug)]
// Each OS builds only one of the variants.
#[allow(dead_code)]
pub enum OpenError {
    /// `open(2)` failed with this errno.
    Errno(i32),
    /// Not FreeBSD.
    Unsupported,
}

#[cfg(target_os = "freebsd")]
mod imp {
    use std::ffi::CStr;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use super::OpenError;
    use crate::msg::PfiocTable;
    use crate::table::{Device, DEFAULT_REQUEST_MAXCOUNT};

    /// An open `/dev/pf`. pf serialises table ioctls itself, so one
    /// descriptor serves every thread.
    #[derive(Debug)]
    pub struct DevPf {
        fd: OwnedFd,
        maxcount: usize,
    }

    impl DevPf {
        pub fn open() -> Result<DevPf, OpenError> {
            let path = b"/dev/pf\0";
            // SAFETY: a valid NUL-terminated path; the result is checked.
            let fd = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDWR | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(OpenError::Errno(errno()));
            }
            // SAFETY: fd was just opened and is owned by nobody else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let maxcount = sysctl_u32(b"net.pf.request_maxcount\0")
                .map(|n| n as usize)
                .filter(|&n| n > 0)
                .unwrap_or(DEFAULT_REQUEST_MAXCOUNT);
            Ok(DevPf { fd, maxcount })
        }
    }

    impl Device for DevPf {
        fn ioctl(&self, request: u64, io: &mut PfiocTable) -> Result<(), i32> {
            loop {
                // SAFETY: `io` is a live pfioc_table whose buffer points at
                // `size` elements of `esize` bytes owned by the caller for
                // the duration of the call; the request number encodes the
                // struct's size, which msg asserts.
                let r = unsafe {
                    libc::ioctl(
                        self.fd.as_raw_fd(),
                        request as libc::c_ulong,
                        io as *mut PfiocTable,
                    )
                };
                if r == 0 {
                    return Ok(());
                }
                let e = errno();
                if e != libc::EINTR {
                    return Err(e);
                }
            }
        }

        fn request_maxcount(&self) -> usize {
            self.maxcount
        }
    }

    fn errno() -> i32 {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    }

    /// An integer sysctl by name; `None` when it does not exist (pf not
    /// loaded) or is not a 32-bit integer.
    fn sysctl_u32(name: &[u8]) -> Option<u32> {
        let name = CStr::from_bytes_with_nul(name).ok()?;
        let mut value: u32 = 0;
        let mut len = std::mem::size_of::<u32>();
        // SAFETY: value and len describe a writable u32; no new value is set.
        let r = unsafe {
            libc::sysctlbyname(
                name.as_ptr(),
                (&mut value as *mut u32).cast(),
                &mut len,
                std::ptr::null(),
                0,
            )
        };
        (r == 0 && len == std::mem::size_of::<u32>()).then_some(value)
    }
}

#[cfg(target_os = "freebsd")]
pub use imp::DevPf;

/// Opens `/dev/pf` read-write.
pub fn open() -> Result<Box<dyn Device>, OpenError> {
    #[cfg(target_os = "freebsd")]
    {
        DevPf::open().map(|d| Box::new(d) as Box<dyn Device>)
    }
    #[cfg(not(target_os = "freebsd"))]
    {
        Err(OpenError::Unsupported)
    }
}

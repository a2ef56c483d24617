//! Terminals for containers, made inside the container as runc does: the
//! process opens /dev/ptmx of the container's own devpts, makes the peer its
//! stdio and controlling terminal, and passes the master over a unix socket
//! (SCM_RIGHTS) to whoever copies its output. A terminal made outside would
//! name a pts the container cannot see (`tty` would say "not a tty").

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A connected pair of unix stream sockets, close-on-exec.
pub fn socket_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair fills two descriptors on success.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn last_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// Opens a terminal in this mount namespace's /dev/ptmx, makes its peer
/// stdin, stdout, stderr and the controlling terminal (the caller has
/// called setsid), and sends the master over `socket`.
pub fn attach_new_terminal(socket: RawFd) -> Result<(), String> {
    // SAFETY: plain syscalls on descriptors opened here.
    unsafe {
        let master = libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if master < 0 {
            return Err(last_error("opening /dev/ptmx"));
        }
        let master = OwnedFd::from_raw_fd(master);
        let unlock: libc::c_int = 0;
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) < 0 {
            return Err(last_error("unlocking the terminal"));
        }
        let peer = libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY,
        );
        if peer < 0 {
            return Err(last_error("opening the terminal's peer"));
        }
        let peer = OwnedFd::from_raw_fd(peer);
        for target in 0..3 {
            if libc::dup2(peer.as_raw_fd(), target) < 0 {
                return Err(last_error("dup2 terminal"));
            }
        }
        drop(peer);
        if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
            return Err(last_error("setting the controlling terminal"));
        }
        send_fd(socket, master.as_raw_fd())
    }
}

/// Runs `f` with a message of one data byte and room for one descriptor.
fn with_message<R>(f: impl FnOnce(&mut libc::msghdr) -> R) -> R {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: msghdr is plain data; zeroed is its empty value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    f(&mut msg)
}

fn send_fd(socket: RawFd, fd: RawFd) -> Result<(), String> {
    with_message(|msg| {
        // SAFETY: the control buffer has room for one SCM_RIGHTS header and
        // descriptor, written through the CMSG macros.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
            if libc::sendmsg(socket, msg, 0) < 0 {
                return Err(last_error("sending the terminal"));
            }
        }
        Ok(())
    })
}

/// Receives a descriptor sent with [`attach_new_terminal`], waiting up to
/// `timeout`.
pub fn receive_fd(socket: RawFd, timeout: Duration) -> Result<OwnedFd, String> {
    let mut poll = libc::pollfd {
        fd: socket,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one valid pollfd.
    let ready = unsafe { libc::poll(&mut poll, 1, timeout.as_millis() as libc::c_int) };
    if ready <= 0 {
        return Err("no terminal arrived from the container process".into());
    }
    with_message(|msg| {
        // SAFETY: the received descriptor is taken only when the kernel
        // delivered an SCM_RIGHTS message.
        unsafe {
            if libc::recvmsg(socket, msg, libc::MSG_CMSG_CLOEXEC) <= 0 {
                return Err(last_error("receiving the terminal"));
            }
            let cmsg = libc::CMSG_FIRSTHDR(msg);
            if cmsg.is_null()
                || (*cmsg).cmsg_level != libc::SOL_SOCKET
                || (*cmsg).cmsg_type != libc::SCM_RIGHTS
            {
                return Err("the container process sent no terminal".into());
            }
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
            Ok(OwnedFd::from_raw_fd(fd))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_cross_a_socket_pair() {
        let (a, b) = socket_pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        send_fd(a.as_raw_fd(), file.as_raw_fd()).unwrap();
        let received = receive_fd(b.as_raw_fd(), Duration::from_secs(1)).unwrap();
        let mut received = std::fs::File::from(received);
        std::io::Write::write_all(&mut received, b"x").unwrap();
        assert_eq!(file.metadata().unwrap().len(), 1);
        assert!(receive_fd(b.as_raw_fd(), Duration::from_millis(10)).is_err());
    }
}

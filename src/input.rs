//! Opening logs the user names: a path, `-` for stdin, gzip or plain.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::input;

/// Read buffer size: large enough that the line reader rarely refills.
const BUF_SIZE: usize = 256 * 1024;

/// Wraps a byte stream, decompressing it when it starts with the gzip magic.
pub fn maybe_gunzip<R: Read + Send + 'static>(inner: R) -> io::Result<Box<dyn BufRead + Send>> {
    let mut buffered = BufReader::with_capacity(BUF_SIZE, inner);
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            BUF_SIZE,
            MultiGzDecoder::new(buffered),
        )))
    } else {
        Ok(Box::new(buffered))
    }
}

/// Opens `name` (`-` is stdin) for reading, decompressing gzip transparently.
/// A missing or unreadable file is an input error naming the file.
pub fn open_log(name: &str) -> anyhow::Result<Box<dyn BufRead + Send>> {
    if name == "-" {
        return maybe_gunzip(io::stdin()).map_err(|e| input(format!("stdin: {e}")));
    }
    let path = Path::new(name);
    if path.is_dir() {
        return Err(input(format!("{name}: is a directory, not a log file")));
    }
    let file =
        File::open(path).map_err(|e| input(format!("{name}: cannot open: {}", io_reason(&e))))?;
    maybe_gunzip(file).map_err(|e| input(format!("{name}: cannot read: {}", io_reason(&e))))
}

/// Reads a whole file of at most `max` bytes. The size is checked while
/// reading, not from the file's metadata: `/dev/zero`, a FIFO or a file that
/// grows report a length of 0, and must still not fill the memory.
pub fn read_at_most(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    if path.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a directory",
        ));
    }
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {}, the most RunnerIQ reads from it", size(max)),
        ));
    }
    Ok(bytes)
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

/// `io::Error`'s text without the `(os error N)` suffix.
pub fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

/// Writes `bytes` to `path` whole or not at all: a temporary file beside it,
/// then a rename.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{name}.runneriq-tmp"));
    let fail = |e: std::io::Error| {
        input(format!(
            "{}: cannot write: {}",
            path.display(),
            io_reason(&e)
        ))
    };
    std::fs::write(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}

/// Whether [`write_new`] may replace a file that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Refuse,
    Replace,
}

/// Writes `bytes` to `path` whole or not at all, like [`write_atomically`]
/// (a temporary file beside it, named for this process, then a link or a
/// rename), and with [`Existing::Refuse`] never over a file that exists,
/// even one created meanwhile: the temporary file is hard-linked to `path`,
/// which fails when `path` exists. `Ok(false)`: it existed, nothing written.
/// A failed write removes the temporary file.
pub fn write_new(path: &Path, bytes: &[u8], existing: Existing) -> anyhow::Result<bool> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    if path.is_dir() {
        return Err(input(format!("{}: is a directory", path.display())));
    }
    let tmp = path.with_file_name(format!(".{name}.{}.runneriq-tmp", std::process::id()));
    let fail =
        |e: &io::Error| anyhow::anyhow!("{}: cannot write: {}", path.display(), io_reason(e));
    let written = (|| -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        io::Write::write_all(&mut f, bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(&e));
    }
    let placed = match existing {
        Existing::Replace => std::fs::rename(&tmp, path).map(|()| true),
        Existing::Refuse => match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            // A file system without hard links: check, then rename.
            Err(_) if path.exists() => Ok(false),
            Err(_) => std::fs::rename(&tmp, path).map(|()| true),
        },
    };
    let _ = std::fs::remove_file(&tmp);
    placed.map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_new_refuses_an_existing_file_unless_told_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("runneriq-write-new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("out.yml");
        assert!(write_new(&p, b"one", Existing::Refuse).unwrap());
        assert!(!write_new(&p, b"two", Existing::Refuse).unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert!(write_new(&p, b"three", Existing::Replace).unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"three");
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["out.yml".to_string()]);
        // A directory that does not exist: an error, nothing left behind.
        assert!(write_new(&dir.join("no/such/x.yml"), b"x", Existing::Refuse).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reading_stops_at_the_cap_whatever_the_metadata_says() {
        let e = read_at_most(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(
            io_reason(&e),
            "larger than 1 MiB, the most RunnerIQ reads from it"
        );
        let e = read_at_most(Path::new("/"), 10).unwrap_err();
        assert_eq!(io_reason(&e), "is a directory");
        let e = read_at_most(Path::new("/no/such/file"), 10).unwrap_err();
        assert_eq!(io_reason(&e), "no such file");
    }
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    #[test]
    fn gzip_is_detected_by_magic() {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(b"hello\nworld\n").unwrap();
        let gz = enc.finish().unwrap();
        let mut r = maybe_gunzip(io::Cursor::new(gz)).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello\nworld\n");

        let mut r = maybe_gunzip(io::Cursor::new(b"plain".to_vec())).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "plain");
    }

    #[test]
    fn missing_file_names_the_file() {
        let e = open_log("/nonexistent/x.log").err().unwrap();
        let msg = crate::error::describe(&e);
        assert_eq!(msg, "/nonexistent/x.log: cannot open: no such file");
        assert_eq!(crate::error::exit_code(&e), crate::error::EXIT_INPUT);
    }
}

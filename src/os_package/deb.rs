//! A `.deb`: an `ar` archive of `debian-binary` (`2.0`), `control.tar.gz` (`./control`) and
//! `data.tar.gz` (the files), in that order, as deb(5) says. Every tar entry is owned by
//! root:root with the fixed mtime; gzip carries no name or time. Entry names are relative
//! (`opt/...`: the tar crate writes them without dpkg-deb's `./`, which dpkg does not need).

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};

use super::{MTIME, PREFIX, PackageInput, description, link_target, version};

/// Writes the package to `out`.
pub fn write(input: &PackageInput<'_>, files: &[(String, PathBuf)], out: &Path) -> io::Result<()> {
    let (deb_arch, _) = super::arch(input.platform).map_err(io::Error::other)?;
    let scratch = tempfile::Builder::new()
        .prefix(".deb-")
        .tempdir_in(out.parent().unwrap_or(Path::new(".")))?;
    let data_path = scratch.path().join("data.tar.gz");
    let installed = data_tar(input, files, &data_path)?;
    let control = control(input, deb_arch, installed);
    let control_tar = control_tar(&control)?;
    let mut ar = BufWriter::new(File::create(out)?);
    ar.write_all(b"!<arch>\n")?;
    member(
        &mut ar,
        "debian-binary",
        b"2.0\n".len() as u64,
        &mut &b"2.0\n"[..],
    )?;
    member(
        &mut ar,
        "control.tar.gz",
        control_tar.len() as u64,
        &mut control_tar.as_slice(),
    )?;
    let mut data = File::open(&data_path)?;
    let size = data.seek(io::SeekFrom::End(0))?;
    data.rewind()?;
    member(&mut ar, "data.tar.gz", size, &mut data)?;
    ar.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// The `control` file. `Installed-Size` in KiB, as dpkg counts it (rounded up per file).
fn control(input: &PackageInput<'_>, arch: &str, installed: u64) -> String {
    let mut depends = vec![format!("python{}", input.python)];
    depends.extend(input.depends.iter().cloned());
    format!(
        "Package: {package}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: hermit-pex\n\
         Installed-Size: {installed}\nDepends: {depends}\nSection: utils\nPriority: optional\n\
         {homepage}Description: {summary}\n {long}\n",
        package = input.package,
        version = version::deb(input.version),
        depends = depends.join(", "),
        summary = input.summary,
        homepage = input
            .homepage
            .map_or_else(String::new, |h| format!("Homepage: {h}\n")),
        long = description(input),
    )
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    // Names as dpkg-deb writes them; set_username/groupname only fail on overlong names.
    h.set_username("root").expect("a short name");
    h.set_groupname("root").expect("a short name");
    h.set_mtime(MTIME);
    h.set_size(size);
    h
}

fn gz<W: Write>(w: W) -> flate2::write::GzEncoder<W> {
    GzBuilder::new().mtime(0).write(w, Compression::new(6))
}

fn control_tar(control: &str) -> io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(gz(Vec::new()));
    let mut dir = header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut dir, "./", io::empty())?;
    let mut file = header(tar::EntryType::Regular, 0o644, control.len() as u64);
    tar.append_data(&mut file, "./control", control.as_bytes())?;
    tar.into_inner()?.finish()
}

/// Writes `data.tar.gz`: the directories down to `/opt/hermit-pex/<package>/`, its files
/// (mode 0755, as in the tarball), `/usr/bin/` and the links. Returns the installed size in KiB.
fn data_tar(input: &PackageInput<'_>, files: &[(String, PathBuf)], out: &Path) -> io::Result<u64> {
    let mut tar = tar::Builder::new(gz(BufWriter::new(File::create(out)?)));
    let dirs = [
        "./".to_owned(),
        "./opt/".to_owned(),
        format!(".{PREFIX}/"),
        format!(".{PREFIX}/{}/", input.package),
    ];
    let mut kib = 0;
    for d in &dirs {
        tar.append_data(
            &mut header(tar::EntryType::Directory, 0o755, 0),
            d,
            io::empty(),
        )?;
    }
    for (name, path) in files {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        kib += size.div_ceil(1024);
        let mut h = header(tar::EntryType::Regular, 0o755, size);
        tar.append_data(
            &mut h,
            format!(".{PREFIX}/{}/{name}", input.package),
            io::BufReader::new(file).take(size),
        )?;
    }
    for d in ["./usr/", "./usr/bin/"] {
        tar.append_data(
            &mut header(tar::EntryType::Directory, 0o755, 0),
            d,
            io::empty(),
        )?;
    }
    let mut binaries: Vec<&str> = input.binaries.iter().map(|b| b.as_str()).collect();
    binaries.sort_unstable();
    for b in binaries {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        tar.append_link(
            &mut h,
            format!("./usr/bin/{b}"),
            link_target(input.package, b),
        )?;
    }
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    gz.finish()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    // dpkg counts directories as 1 KiB each.
    Ok(kib + dirs.len() as u64 + 2)
}

/// One `ar` member: a 60-byte header (name, mtime, owner, group, mode, size, "`\n"), the
/// data, and a newline when the size is odd.
fn member(out: &mut impl Write, name: &str, size: u64, data: &mut impl Read) -> io::Result<()> {
    let header = format!(
        "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
        name, MTIME, 0, 0, "100644", size
    );
    debug_assert_eq!(header.len(), 60);
    out.write_all(header.as_bytes())?;
    let copied = io::copy(&mut data.take(size), out)?;
    if copied != size {
        return Err(io::Error::other(format!(
            "{name}: {copied} bytes where {size} were expected"
        )));
    }
    if size % 2 == 1 {
        out.write_all(b"\n")?;
    }
    Ok(())
}

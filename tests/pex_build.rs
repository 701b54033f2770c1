//! The native platform's sdist fallback, end to end against a real index: an sdist among the
//! chosen artifacts of this machine's own platform is built into a wheel with the version's
//! python (pex's pip, its build backend from the index on loopback), the PEX is built from the
//! wheels, and the launcher of the sdist's console script runs.
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{PypiServer, make_wheel, tools_venv};
use hermit_pex::build::BuildSettings;
use hermit_pex::build::pex::{PexSpec, build_pex, wheel_from_sdist};
use hermit_pex::names::{BinaryName, PackageName, Platform, PythonMinor};
use hermit_pex::tools::{Pex, find_python};

/// An sdist of a setuptools project `native-dep` 1.0 with the console script `native-cmd`:
/// building it needs setuptools, which only the index has.
fn write_sdist(dir: &Path) -> PathBuf {
    let root = "native_dep-1.0";
    let files = [
        (
            "pyproject.toml",
            "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
             [project]\nname = \"native-dep\"\nversion = \"1.0\"\n\n\
             [project.scripts]\nnative-cmd = \"native_dep:main\"\n",
        ),
        (
            "PKG-INFO",
            "Metadata-Version: 2.1\nName: native-dep\nVersion: 1.0\n",
        ),
        (
            "native_dep/__init__.py",
            "import sys\ndef main():\n    print('native-dep 1.0 from its sdist', *sys.argv[1:])\n",
        ),
    ];
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{root}.tar.gz"));
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    for (name, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("{root}/{name}"), text.as_bytes())
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap().flush().unwrap();
    path
}

#[tokio::test]
async fn the_native_platforms_sdist_becomes_a_wheel_and_its_script_runs_from_the_pex() {
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let packages = s.join("packages");
    std::fs::create_dir_all(&packages).unwrap();
    let index = PypiServer::start(&packages);
    let settings = BuildSettings {
        pex: Pex {
            bin_dir: tools_venv().join("bin"),
        },
        uv: hermit_pex::lock::Uv {
            path: tools_venv().join("bin/uv"),
        },
        native: BuildSettings::host_native(),
        indexes: hermit_pex::pypi::Indexes::plain(index.url.parse().unwrap()),
        cache_dir: s.join("cache"),
        work_dir: s.join("work"),
        pex_root: s.join("pex-root"),
        timeout: Duration::from_secs(600),
        test_timeout: Duration::from_secs(60),
        flavours: Default::default(),
    };
    let python = PythonMinor::new(11).unwrap();
    let interpreter = find_python(python).await.expect("CPython 3.11");
    let host = Platform::host().expect("a platform we build for");

    let sdist = write_sdist(&s.join("sdists"));
    let wheel = wheel_from_sdist(&sdist, host, python, &s.join("wheels"), &settings)
        .await
        .unwrap();
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("native_dep-1.0-") && name.ends_with(".whl"),
        "{name}"
    );
    assert_eq!(wheel.parent().unwrap(), s.join("wheels"));

    let tool = s.join("tool");
    std::fs::create_dir_all(&tool).unwrap();
    let tool_wheel = tool.join(make_wheel(
        &tool,
        "sd-tool",
        "1.0",
        &["--requires", "native-dep"],
    ));
    let spec = PexSpec {
        platform: host,
        python,
        requirements: vec!["sd-tool==1.0".into()],
    };
    let pex = build_pex(
        &[tool_wheel, wheel],
        &spec,
        &s.join("out/sd-tool.pex"),
        &settings,
    )
    .await
    .unwrap();

    let package = PackageName::new("sd-tool").unwrap();
    let binaries = [BinaryName::new("native-cmd").unwrap()];
    let tarball = s.join("sd-tool.tar.gz");
    hermit_pex::build::artifact::write_tarball(&tarball, &package, &pex, &binaries).unwrap();
    let unpacked = s.join("unpacked");
    tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&tarball).unwrap(),
    ))
    .unpack(&unpacked)
    .unwrap();
    let path = format!("{}:/usr/bin:/bin", interpreter.parent().unwrap().display());
    for _ in 0..2 {
        let out = Command::new(unpacked.join("native-cmd"))
            .arg("x y")
            .env("PATH", &path)
            .env("PEX_ROOT", s.join("run-root"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "native-dep 1.0 from its sdist x y\n"
        );
    }
}

use std::path::PathBuf;

use super::*;
use crate::lock::choose_all;
use crate::names::{Arch, Os};

const LINUX_AMD64: Platform = Platform::new(Os::Linux, Arch::Amd64);
const DARWIN_ARM64: Platform = Platform::new(Os::Darwin, Arch::Arm64);

/// The official CycloneDX 1.6 JSON schema and the two it references, as
/// scripts/test-tools.sh installs them (from the cyclonedx-python-lib wheel, sha256-pinned).
pub(crate) fn validator() -> jsonschema::Validator {
    let dir = std::env::var_os("HERMIT_PEX_TEST_CYCLONEDX").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/cyclonedx"),
        PathBuf::from,
    );
    let read = |name: &str| -> Value {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run scripts/test-tools.sh (scripts/test does it for you)",
                path.display()
            )
        });
        serde_json::from_str(&text).unwrap()
    };
    let bom = read("bom-1.6.SNAPSHOT.schema.json");
    let resource = |name: &str| jsonschema::Resource::from_contents(read(name));
    jsonschema::options()
        .with_resource(
            "http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json",
            resource("spdx.SNAPSHOT.schema.json"),
        )
        .with_resource(
            "http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json",
            resource("jsf-0.82.SNAPSHOT.schema.json"),
        )
        .should_validate_formats(true)
        .build(&bom)
        .unwrap()
}

pub(crate) fn assert_valid(doc: &Value) {
    let v = validator();
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not CycloneDX 1.6: {errors:#?}");
    // The packaged schema dropped `version` from `required` (it has a default): ours has it.
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["specVersion"], "1.6");
}

fn sha(name: &str) -> String {
    crate::digest::sha256_hex(name)
}

/// A lock as uv writes it, each file's digest derived from its name.
fn lock() -> Pylock {
    let file = |f: &str| {
        format!(
            "{{ url = \"https://files.example/{f}\", hashes = {{ sha256 = \"{}\" }} }}",
            sha(f)
        )
    };
    let text = format!(
        r#"lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.12"

[[packages]]
name = "tiny-tool"
version = "1.0"
wheels = [{tool}]

[[packages]]
name = "native-dep"
version = "2.0"
sdist = {native_sdist}
wheels = [{native_linux}, {native_mac}]

[[packages]]
name = "sdist-only"
version = "0.3"
sdist = {sdist_only}

[[packages]]
name = "colorama"
version = "0.4.6"
marker = "sys_platform == 'win32'"
wheels = [{colorama}]

[[packages]]
name = "numpy"
version = "2.2.0"
marker = "python_full_version < '3.13'"
wheels = [{numpy}, {numpy_mac}]

[[packages]]
name = "numpy"
version = "2.3.0"
marker = "python_full_version >= '3.13'"
wheels = [{numpy3}]
"#,
        tool = file("tiny_tool-1.0-py3-none-any.whl"),
        native_sdist = file("native_dep-2.0.tar.gz"),
        native_linux = file("native_dep-2.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
        native_mac = file("native_dep-2.0-cp312-cp312-macosx_11_0_arm64.whl"),
        sdist_only = file("sdist_only-0.3.tar.gz"),
        colorama = file("colorama-0.4.6-py2.py3-none-any.whl"),
        numpy = file("numpy-2.2.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
        numpy_mac = file("numpy-2.2.0-cp312-cp312-macosx_11_0_arm64.whl"),
        numpy3 = file("numpy-2.3.0-cp313-cp313-manylinux_2_17_x86_64.whl"),
    );
    Pylock::parse(&text).unwrap()
}

fn name(n: &str) -> PackageName {
    PackageName::new(n).unwrap()
}

fn py(minor: u8) -> PythonMinor {
    PythonMinor::new(minor).unwrap()
}

#[test]
fn the_sbom_validates_and_lists_exactly_the_locks_distributions() {
    let lock = lock();
    // linux-amd64 builds natively (its sdist-only dependency is built there); darwin-arm64
    // has no wheel of sdist-only and is missing.
    let choices = choose_all(&lock, &[LINUX_AMD64, DARWIN_ARM64], py(12), &[LINUX_AMD64]);
    assert_eq!(choices.missing().count(), 1);
    let (package, version) = (name("tiny-tool"), "1.0".parse().unwrap());
    let input = SbomInput {
        package: &package,
        version: &version,
        python: py(12),
        lock: &lock,
        choices: &choices,
    };
    let licenses = Licenses::from([
        (
            (name("tiny-tool"), "1.0".parse().unwrap()),
            Declared {
                expression: Some("MIT OR Apache-2.0".into()),
                names: vec![],
            },
        ),
        (
            (name("native-dep"), "2.0".parse().unwrap()),
            Declared {
                expression: None,
                names: vec!["BSD License".into(), "BSD-3-Clause".into()],
            },
        ),
    ]);
    let bytes = document(&input, &licenses);
    assert_eq!(bytes, document(&input, &licenses), "not deterministic");
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    assert_valid(&doc);

    let components = doc["components"].as_array().unwrap();
    let pypi: BTreeSet<(String, String)> = components
        .iter()
        .filter(|c| {
            c["purl"]
                .as_str()
                .is_some_and(|p| p.starts_with("pkg:pypi/"))
        })
        .map(|c| {
            assert_eq!(
                c["purl"],
                format!(
                    "pkg:pypi/{}@{}",
                    c["name"].as_str().unwrap(),
                    c["version"].as_str().unwrap()
                )
            );
            (
                c["name"].as_str().unwrap().into(),
                c["version"].as_str().unwrap().into(),
            )
        })
        .collect();
    let locked: BTreeSet<(String, String)> = lock
        .packages
        .iter()
        .map(|p| (p.name.to_string(), p.version.to_string()))
        .collect();
    assert_eq!(pypi, locked, "exactly the lock's distributions");
    assert_eq!(components.len(), locked.len() + 1, "plus the python");

    let by_name = |n: &str, v: &str| {
        components
            .iter()
            .find(|c| c["name"] == n && c["version"] == v)
            .unwrap_or_else(|| panic!("no {n} {v}"))
    };
    let hashes = |c: &Value| -> Vec<String> {
        c["hashes"]
            .as_array()
            .map(|h| {
                h.iter()
                    .map(|h| h["content"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let native = by_name("native-dep", "2.0");
    // darwin-arm64 is missing (no wheel of sdist-only), so it chose nothing: its macOS wheel
    // of native-dep is in no PEX.
    assert_eq!(
        hashes(native),
        [sha("native_dep-2.0-cp312-cp312-manylinux_2_17_x86_64.whl")],
        "the chosen wheel; neither the sdist nor a missing platform's wheel"
    );
    assert_eq!(
        native["licenses"],
        json!([{"license": {"name": "BSD License", "acknowledgement": "declared"}},
               {"license": {"name": "BSD-3-Clause", "acknowledgement": "declared"}}])
    );
    assert_eq!(
        by_name("tiny-tool", "1.0")["licenses"],
        json!([{"expression": "MIT OR Apache-2.0", "acknowledgement": "declared"}])
    );
    let sdist = by_name("sdist-only", "0.3");
    assert_eq!(hashes(sdist), [sha("sdist_only-0.3.tar.gz")]);
    assert_eq!(
        sdist["externalReferences"][0]["type"],
        "source-distribution"
    );
    assert_eq!(sdist["scope"], "required");
    let windows = by_name("colorama", "0.4.6");
    assert_eq!(windows["scope"], "optional");
    assert!(hashes(windows).is_empty());
    assert_eq!(
        by_name("numpy", "2.3.0")["scope"],
        "optional",
        "a 3.13-only pin"
    );
    assert_eq!(by_name("numpy", "2.2.0")["scope"], "required");
    let python = components.iter().find(|c| c["name"] == "python").unwrap();
    assert_eq!(
        (&python["type"], &python["version"]),
        (&json!("platform"), &json!("3.12"))
    );
    let tools: Vec<&str> = doc["metadata"]["tools"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["hermit-pex", "pex", "uv"]);
    assert_eq!(
        doc["metadata"]["tools"]["components"][1]["version"],
        crate::tools::PEX_VERSION
    );
    let deps = doc["dependencies"][0]["dependsOn"].as_array().unwrap();
    assert!(deps.contains(&json!("python@3.12")));
    assert!(!deps.contains(&json!("pkg:pypi/colorama@0.4.6")));

    // Another choice is another document, with another serial number: darwin-arm64 native
    // too, its macOS wheel chosen.
    let all_native = choose_all(
        &lock,
        &[LINUX_AMD64, DARWIN_ARM64],
        py(12),
        &[LINUX_AMD64, DARWIN_ARM64],
    );
    let other: Value = serde_json::from_slice(&document(
        &SbomInput {
            choices: &all_native,
            ..input
        },
        &licenses,
    ))
    .unwrap();
    assert_ne!(other["serialNumber"], doc["serialNumber"]);
    let native = other["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "native-dep")
        .unwrap();
    let mut want = vec![
        sha("native_dep-2.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
        sha("native_dep-2.0-cp312-cp312-macosx_11_0_arm64.whl"),
    ];
    want.sort();
    assert_eq!(hashes(native), want, "each chosen wheel, sorted");
}

#[test]
fn purls_encode_what_is_not_plain() {
    assert_eq!(
        purl(&name("Aider_Chat"), &"0.83.1".parse().unwrap()),
        "pkg:pypi/aider-chat@0.83.1"
    );
    assert_eq!(
        purl(&name("x"), &"1!2.0rc1".parse().unwrap()),
        "pkg:pypi/x@1%212.0rc1"
    );
}

#[test]
fn a_document_that_breaks_the_schema_is_caught() {
    // The validator is not a stub: a component without a name fails it.
    let mut doc: Value = serde_json::from_slice(&document(
        &SbomInput {
            package: &name("tiny-tool"),
            version: &"1.0".parse().unwrap(),
            python: py(12),
            lock: &lock(),
            choices: &choose_all(&lock(), &[LINUX_AMD64], py(12), &[]),
        },
        &Licenses::new(),
    ))
    .unwrap();
    doc["components"][0].as_object_mut().unwrap().remove("name");
    assert!(!validator().is_valid(&doc));
}

/// From files on disk (a lock whose entries are paths beside it): the licenses come from the
/// chosen wheel's METADATA and the sdist's PKG-INFO, and the file is written.
#[tokio::test]
async fn make_reads_the_licenses_from_the_chosen_files() {
    let dir = tempfile::tempdir().unwrap();
    let write_zip = |file: &str, member: &str, text: &str| {
        let mut z = zip::ZipWriter::new(std::fs::File::create(dir.path().join(file)).unwrap());
        z.start_file(member, zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut z, text.as_bytes()).unwrap();
        z.finish().unwrap();
    };
    write_zip(
        "tiny_tool-1.0-py3-none-any.whl",
        "tiny_tool-1.0.dist-info/METADATA",
        "Metadata-Version: 2.4\nName: tiny-tool\nLicense-Expression: Apache-2.0\n",
    );
    let sdist = dir.path().join("c_dep-0.1.tar.gz");
    {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&sdist).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        let text = "Name: c-dep\nClassifier: License :: OSI Approved :: MIT License\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, "c_dep-0.1/PKG-INFO", text.as_bytes())
            .unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }
    let digest = |f: &str| crate::digest::sha256_file(&dir.path().join(f)).unwrap().1;
    let text = format!(
        "lock-version = \"1.0\"\n\
         [[packages]]\nname = \"tiny-tool\"\nversion = \"1.0\"\n\
         wheels = [{{ path = \"tiny_tool-1.0-py3-none-any.whl\", hashes = {{ sha256 = \"{}\" }} }}]\n\
         [[packages]]\nname = \"c-dep\"\nversion = \"0.1\"\n\
         sdist = {{ path = \"c_dep-0.1.tar.gz\", hashes = {{ sha256 = \"{}\" }} }}\n",
        digest("tiny_tool-1.0-py3-none-any.whl"),
        digest("c_dep-0.1.tar.gz"),
    );
    let lock = Pylock::parse(&text).unwrap();
    let choices = choose_all(&lock, &[LINUX_AMD64], py(12), &[LINUX_AMD64]);
    let fetcher = Fetcher::new(
        crate::pypi::Indexes::plain("http://127.0.0.1:9/simple/".parse().unwrap()),
        &dir.path().join("cache"),
        std::time::Duration::from_secs(10),
    )
    .unwrap()
    .with_lock_dir(dir.path());
    let package = name("tiny-tool");
    let version = "1.0".parse().unwrap();
    let input = SbomInput {
        package: &package,
        version: &version,
        python: py(12),
        lock: &lock,
        choices: &choices,
    };
    let out = dir.path().join("out");
    let sbom = make(&input, &fetcher, &out).await.unwrap();
    assert_eq!(sbom.path, out.join("tiny-tool.cdx.json"));
    let bytes = std::fs::read(&sbom.path).unwrap();
    assert_eq!(
        (sbom.size, sbom.sha256.as_str()),
        (
            bytes.len() as u64,
            crate::digest::sha256_hex(&bytes).as_str()
        )
    );
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    assert_valid(&doc);
    let licenses: BTreeMap<&str, &Value> = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("licenses").is_some())
        .map(|c| (c["name"].as_str().unwrap(), &c["licenses"]))
        .collect();
    assert_eq!(
        licenses["tiny-tool"],
        &json!([{"expression": "Apache-2.0", "acknowledgement": "declared"}])
    );
    assert_eq!(
        licenses["c-dep"],
        &json!([{"license": {"name": "MIT License", "acknowledgement": "declared"}}])
    );
    // A local file (no index URL) has no external reference to give.
    assert!(doc["components"][0].get("externalReferences").is_none());
}

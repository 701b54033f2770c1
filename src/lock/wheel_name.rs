//! Wheel file names (the binary distribution format's
//! `{distribution}-{version}(-{build tag})?-{python tag}-{abi tag}-{platform tag}.whl`), with
//! their compressed tag sets (`py2.py3-none-any`,
//! `manylinux2014_x86_64.manylinux_2_17_x86_64`) expanded. A leaf: it imports nothing of ours.

use std::fmt;

/// A parsed wheel file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    /// As written (`black`, `mypy_extensions`); compare through `names::normalize`.
    pub distribution: String,
    pub version: String,
    /// The optional build tag: its leading number and the rest, compared in that order.
    pub build: Option<(u64, String)>,
    pub python: Vec<String>,
    pub abi: Vec<String>,
    pub platform: Vec<String>,
}

/// Why a file name is not a wheel's; the caller names the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a wheel file name ({0}): expected NAME-VERSION[-BUILD]-PYTHON-ABI-PLATFORM.whl")]
pub struct WheelNameError(&'static str);

impl WheelName {
    pub fn parse(filename: &str) -> Result<Self, WheelNameError> {
        let stem = filename
            .strip_suffix(".whl")
            .ok_or(WheelNameError("it does not end in .whl"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (distribution, version, build, tags) = match parts.as_slice() {
            [d, v, py, abi, plat] => (*d, *v, None, [*py, *abi, *plat]),
            [d, v, b, py, abi, plat] => (*d, *v, Some(*b), [*py, *abi, *plat]),
            _ => return Err(WheelNameError("it has not 5 or 6 dash-separated parts")),
        };
        if distribution.is_empty() || version.is_empty() {
            return Err(WheelNameError("the name or the version is empty"));
        }
        let build = build.map(parse_build).transpose()?;
        let [python, abi, platform] = tags.map(expand);
        if [&python, &abi, &platform]
            .iter()
            .any(|set| set.is_empty() || set.iter().any(String::is_empty))
        {
            return Err(WheelNameError("a tag is empty"));
        }
        Ok(Self {
            distribution: distribution.to_owned(),
            version: version.to_owned(),
            build,
            python,
            abi,
            platform,
        })
    }

    /// Every `python-abi-platform` tag the wheel supports (the product of its tag sets).
    pub fn tags(&self) -> impl Iterator<Item = String> + '_ {
        self.python.iter().flat_map(move |py| {
            self.abi.iter().flat_map(move |abi| {
                self.platform
                    .iter()
                    .map(move |plat| format!("{py}-{abi}-{plat}"))
            })
        })
    }

    /// Pure Python: no ABI and no platform (`py3-none-any`, `py2.py3-none-any`).
    pub fn is_none_any(&self) -> bool {
        self.abi.iter().all(|a| a == "none") && self.platform.iter().all(|p| p == "any")
    }
}

impl fmt::Display for WheelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.distribution, self.version)?;
        if let Some((n, rest)) = &self.build {
            write!(f, "-{n}{rest}")?;
        }
        write!(
            f,
            "-{}-{}-{}.whl",
            self.python.join("."),
            self.abi.join("."),
            self.platform.join(".")
        )
    }
}

fn expand(set: &str) -> Vec<String> {
    set.split('.').map(str::to_owned).collect()
}

/// A build tag starts with a digit; wheels that differ only in it sort by (number, rest).
fn parse_build(tag: &str) -> Result<(u64, String), WheelNameError> {
    let digits = tag.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(WheelNameError("the build tag does not start with a digit"));
    }
    let n = tag[..digits]
        .parse()
        .map_err(|_| WheelNameError("the build tag's number is too large"))?;
    Ok((n, tag[digits..].to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_tag_sets_expand() {
        let w = WheelName::parse("six-1.17.0-py2.py3-none-any.whl").unwrap();
        assert_eq!(w.distribution, "six");
        assert_eq!(w.version, "1.17.0");
        assert_eq!(w.build, None);
        assert_eq!(
            w.tags().collect::<Vec<_>>(),
            ["py2-none-any", "py3-none-any"]
        );
        assert!(w.is_none_any());

        let w = WheelName::parse(
            "black-26.10.1-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
        )
        .unwrap();
        assert_eq!(
            w.tags().collect::<Vec<_>>(),
            [
                "cp312-cp312-manylinux2014_x86_64",
                "cp312-cp312-manylinux_2_17_x86_64",
                "cp312-cp312-manylinux_2_28_x86_64"
            ]
        );
        assert!(!w.is_none_any());
        assert_eq!(
            w.to_string(),
            "black-26.10.1-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl"
        );
    }

    #[test]
    fn build_tags_are_parsed_and_ordered() {
        let w = WheelName::parse("tool-1.0-12b-py3-none-any.whl").unwrap();
        assert_eq!(w.build, Some((12, "b".to_owned())));
        assert_eq!(w.to_string(), "tool-1.0-12b-py3-none-any.whl");
        assert!(Some((12, String::new())) > Some((9, "z".to_owned())));
    }

    #[test]
    fn bad_names_say_why_without_echoing_them() {
        for bad in [
            "tool-1.0.tar.gz",
            "tool-1.0-py3-none.whl",
            "tool-1.0-x-y-py3-none-any.whl",
            "tool-1.0-b1-py3-none-any.whl",
            "tool-1.0-py3..py2-none-any.whl",
            "-1.0-py3-none-any.whl",
        ] {
            let e = WheelName::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("not a wheel file name"), "{bad}: {e}");
            assert!(!e.contains(bad), "{e}");
        }
    }

    #[test]
    fn abi3_and_cpython_none_are_not_pure() {
        let w =
            WheelName::parse("cryptography-51.0.1-cp311-abi3-macosx_10_9_universal2.whl").unwrap();
        assert!(!w.is_none_any());
        let w = WheelName::parse("tool-1.0-cp312-none-any.whl").unwrap();
        assert!(
            w.is_none_any(),
            "no ABI, any platform: pure Python for 3.12"
        );
    }
}

//! Every committed `measurements/<release>.json` parses with the current format and is
//! self-consistent: its RTMR1/RTMR2 are the replay of the events it lists, and its file
//! name is its release name.

use std::path::Path;

use kms_measure::ReleaseMeasurements;
use kms_measure::rtmr::replay;

#[test]
fn committed_release_files_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../measurements");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let r = ReleaseMeasurements::load(&path).unwrap();
        assert_eq!(path.file_stem().unwrap().to_str().unwrap(), r.release);
        assert_eq!(
            r.registers.rtmr1.value,
            Some(replay(&r.events.rtmr1)),
            "{}",
            r.release
        );
        assert_eq!(
            r.registers.rtmr2.value,
            Some(replay(&r.events.rtmr2)),
            "{}",
            r.release
        );
        assert!(r.inputs.cmdline.contains("kms.roothash="), "{}", r.release);
        seen += 1;
    }
    assert!(seen > 0, "no release files in {}", dir.display());
}

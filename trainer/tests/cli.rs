//! The `cwnn-trainer` command line: its files and its last line.

use std::process::Command;

fn trainer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cwnn-trainer"))
}

#[test]
fn writes_the_model_and_its_splits_and_ends_with_the_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m/model.onnx");
    let out = trainer()
        .args([
            "--model",
            "mlp",
            "--epochs",
            "2",
            "--hidden",
            "8",
            "--train-limit",
            "200",
            "--device",
            "cpu",
            "--qat",
        ])
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    let last = stdout.lines().last().unwrap();
    let acc: f64 = last.strip_prefix("test_accuracy=").expect(last).parse().unwrap();
    assert!((0.0..=1.0).contains(&acc));
    assert!(stdout.contains("fake_quant_test_accuracy="), "{stdout}");
    assert!(
        stderr.contains("epoch   2/2") && stderr.contains("device: cpu"),
        "{stderr}"
    );
    assert!(std::fs::metadata(&model).unwrap().len() > 1000);
    let test = std::fs::read_to_string(dir.path().join("m/test.csv")).unwrap();
    let mut lines = test.lines();
    assert!(lines.next().unwrap().ends_with(",p63,label"));
    assert_eq!(lines.count(), 359);
    let calibration = std::fs::read_to_string(dir.path().join("m/calibration.csv")).unwrap();
    assert_eq!(calibration.lines().count(), 201);
}

#[test]
fn bad_arguments_are_refused() {
    let out = trainer()
        .args(["--model", "resnet", "--out", "x.onnx"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'resnet'") && err.contains("transformer"), "{err}");
    if cwnn_trainer::device::probe_cuda().is_err() {
        let dir = tempfile::tempdir().unwrap();
        let out = trainer()
            .args(["--model", "mlp", "--device", "cuda", "--out"])
            .arg(dir.path().join("m.onnx"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--device cuda, but CUDA is not usable"), "{err}");
        assert!(!dir.path().join("m.onnx").exists());
    }
}

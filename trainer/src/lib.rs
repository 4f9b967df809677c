//! cwnn's companion trainer: MLP, CNN, LSTM, LeNet and transformer digit classifiers trained with burn — on a CUDA
//! GPU when libcuda loads, on the CPU (ndarray) otherwise — and written as standard ONNX that
//! `cwnn import` turns into an on-chain model. Optional quantization-aware training rounds
//! weights and activations the way the importer will, so int8 accuracy follows float.

pub mod data;
pub mod device;
pub mod export;
pub mod lenet;
pub mod model;
pub mod qat;
pub mod rng;
pub mod train;
pub mod transformer;

pub use data::{Dataset, DatasetKind};
pub use device::DeviceChoice;
pub use model::Arch;
pub use qat::Qat;
pub use train::{train, TrainConfig, Trained};

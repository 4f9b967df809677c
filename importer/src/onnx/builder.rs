//! State of one import: the ONNX tensors seen so far (constants or per-sample tensors with
//! their batch axis) and the float nodes emitted.

use std::collections::{HashMap, HashSet};

use ndarray::ArrayD;
use onnx_protobuf::NodeProto;

use super::ImportError;
use crate::float::{FloatNode, FloatOp};

/// A tensor computed per sample. `shape` is one sample's shape; the ONNX tensor has the batch
/// axis inserted at `batch` (none for a tensor without one). `id` names the float tensor that
/// holds the data, whose own shape may differ: Reshape, Squeeze, Flatten and batch-only
/// Transpose change only `shape`, and a Reshape node is emitted only where a layer needs it.
///
/// `order`, when set, says a Transpose reordered the sample's data without a layer: element
/// `k` of the sample (row-major over `shape`) is element `order[k]` of tensor `id` (row-major
/// over its own shape). Reshapes keep it; only a Dense can absorb it (by permuting its weight
/// columns), and every other consumer refuses it by name.
#[derive(Clone, Debug, PartialEq)]
pub struct Dyn {
    pub id: usize,
    pub shape: Vec<usize>,
    pub batch: Option<usize>,
    pub order: Option<Vec<usize>>,
}

#[derive(Clone, Debug)]
pub enum Value {
    Const(ArrayD<f64>),
    Dyn(Dyn),
}

pub struct Builder {
    pub opset: i64,
    /// Size of the batch axis in the declared input (1 where it is symbolic): shape
    /// arithmetic (Shape, Reshape targets) sees it.
    pub batch_size: usize,
    /// How many nodes read each tensor name (an unread optional output is not computed).
    pub consumers: HashMap<String, usize>,
    /// The same, counting only nodes that read data (not Shape or Size).
    pub readers: HashMap<String, usize>,
    /// Tensor names a Softmax reads (a Where of a tensor is only supported as its mask).
    pub softmax_inputs: HashSet<String>,
    /// Whether the model input has a batch axis. Then every per-sample value has one too,
    /// unless a Reshape merged that (size-1) axis into another ([`Builder::merged`]).
    batched: bool,
    values: HashMap<String, Value>,
    pub nodes: Vec<FloatNode>,
    /// Shape of each float tensor (0: the input).
    shapes: Vec<Vec<usize>>,
}

impl Builder {
    pub fn new(opset: i64) -> Self {
        Builder {
            opset,
            batch_size: 1,
            consumers: HashMap::new(),
            readers: HashMap::new(),
            softmax_inputs: HashSet::new(),
            batched: false,
            values: HashMap::new(),
            nodes: Vec::new(),
            shapes: Vec::new(),
        }
    }

    pub fn set_const(&mut self, name: &str, v: ArrayD<f64>) {
        self.values.insert(name.to_string(), Value::Const(v));
    }
    pub fn is_const(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(Value::Const(_)))
    }
    pub fn set_input(&mut self, name: &str, shape: Vec<usize>, batch: Option<usize>, batch_size: usize) {
        self.batch_size = batch_size;
        self.batched = batch.is_some();
        self.shapes = vec![shape.clone()];
        self.values.insert(
            name.to_string(),
            Value::Dyn(Dyn {
                id: 0,
                shape,
                batch,
                order: None,
            }),
        );
    }
    pub fn set(&mut self, name: &str, v: Value) {
        if !name.is_empty() {
            self.values.insert(name.to_string(), v);
        }
    }

    /// Input `i` of `node`, `None` where it is absent or named "" (an omitted optional input).
    pub fn input(&self, node: &NodeProto, i: usize) -> Result<Option<&Value>, ImportError> {
        match node.input.get(i).map(String::as_str) {
            None | Some("") => Ok(None),
            Some(name) => self
                .values
                .get(name)
                .map(Some)
                .ok_or_else(|| ImportError::DanglingInput {
                    node: ImportError::name_of(node),
                    op: node.op_type.clone(),
                    input: name.to_string(),
                }),
        }
    }
    pub fn required(&self, node: &NodeProto, i: usize) -> Result<&Value, ImportError> {
        self.input(node, i)?
            .ok_or_else(|| ImportError::node(node, format!("input {i} is missing")))
    }
    /// Input `i` as a constant; a per-sample tensor there is unsupported (weights must be known).
    pub fn constant(&self, node: &NodeProto, i: usize) -> Result<Option<&ArrayD<f64>>, ImportError> {
        match self.input(node, i)? {
            None => Ok(None),
            Some(Value::Const(c)) => Ok(Some(c)),
            Some(Value::Dyn(_)) => Err(ImportError::unsupported(
                node,
                format!(
                    "input {i} ('{}') must be a constant (an initializer, or a graph input bound with --const)",
                    node.input[i]
                ),
            )),
        }
    }
    pub fn required_const(&self, node: &NodeProto, i: usize) -> Result<&ArrayD<f64>, ImportError> {
        self.constant(node, i)?
            .ok_or_else(|| ImportError::node(node, format!("input {i} is missing")))
    }
    /// Input `i` as a per-sample tensor.
    pub fn dynamic(&self, node: &NodeProto, i: usize) -> Result<Dyn, ImportError> {
        match self.required(node, i)? {
            Value::Dyn(d) => Ok(d.clone()),
            Value::Const(_) => Err(ImportError::unsupported(
                node,
                format!("input {i} is a constant where a per-sample tensor is expected"),
            )),
        }
    }

    /// The ONNX shape of `d`: its sample shape with the batch axis put back.
    /// Whether `d`'s batch axis was merged into another by a Reshape: a Keras Dense on a
    /// sequence, which tf2onnx writes as Tensordot (`[N, T, d] → [N·T, d]`, MatMul, and back),
    /// or PyTorch's MultiheadAttention (`[T, N, d] → [T, N·H, d/H]`). A Reshape that inserts it
    /// back as a size-1 axis restores it.
    pub fn merged(&self, d: &Dyn) -> bool {
        self.batched && d.batch.is_none()
    }

    /// The element count of float tensor `id`.
    pub fn numel_of(&self, id: usize) -> usize {
        self.shapes[id].iter().product()
    }
    pub fn full_shape(&self, d: &Dyn) -> Vec<usize> {
        let mut s = d.shape.clone();
        if let Some(b) = d.batch {
            s.insert(b, self.batch_size);
        }
        s
    }
    /// A per-sample tensor from an ONNX shape with the batch axis at `batch`.
    pub fn from_full(id: usize, full: &[usize], batch: Option<usize>) -> Dyn {
        let shape = full
            .iter()
            .enumerate()
            .filter(|&(i, _)| Some(i) != batch)
            .map(|(_, &d)| d)
            .collect();
        Dyn {
            id,
            shape,
            batch,
            order: None,
        }
    }

    /// Appends a node; its output has sample shape `shape` and its ONNX batch axis at `batch`.
    pub fn push(
        &mut self,
        name: &str,
        op: FloatOp,
        inputs: Vec<usize>,
        shape: Vec<usize>,
        batch: Option<usize>,
    ) -> Dyn {
        self.nodes.push(FloatNode {
            name: name.to_string(),
            op,
            inputs,
            shape: shape.clone(),
        });
        self.shapes.push(shape.clone());
        Dyn {
            id: self.nodes.len(),
            shape,
            batch,
            order: None,
        }
    }

    /// The float tensor holding `d` at its own shape, emitting a Reshape where it differs, or
    /// a Permute for a Transpose's reordering that no Dense absorbed.
    pub fn materialize(&mut self, node: &NodeProto, d: &Dyn) -> Result<usize, ImportError> {
        if let Some(index) = &d.order {
            let name = format!("{} (permute of tensor {})", ImportError::name_of(node), d.id);
            let op = FloatOp::Permute {
                index: index.clone(),
                shape: d.shape.clone(),
            };
            return Ok(self.push(&name, op, vec![d.id], d.shape.clone(), d.batch).id);
        }
        if self.shapes[d.id] == d.shape {
            return Ok(d.id);
        }
        let name = format!("reshape of tensor {}", d.id);
        Ok(self
            .push(
                &name,
                FloatOp::Reshape(d.shape.clone()),
                vec![d.id],
                d.shape.clone(),
                d.batch,
            )
            .id)
    }

    /// The float tensor `d` reads with its last two axes swapped, where that is all its
    /// pending Transpose does: a MatMul then reads that tensor transposed, moving no data.
    pub fn swapped_source(&self, d: &Dyn) -> Option<usize> {
        let (order, src) = (d.order.as_ref()?, &self.shapes[d.id]);
        let r = src.len();
        let mut swapped = src.clone();
        if r < 2 || order.len() != src.iter().product::<usize>() {
            return None;
        }
        swapped.swap(r - 2, r - 1);
        let (rows, cols) = (src[r - 2], src[r - 1]);
        // Element (h, j, i) of `d` (shape [.., cols, rows]) is element (h, i, j) of the source.
        let swap = |k: usize| {
            let (h, jr) = (k / (rows * cols), k % (rows * cols));
            h * rows * cols + (jr % rows) * cols + jr / rows
        };
        (d.shape == swapped && order.iter().enumerate().all(|(k, &i)| i == swap(k))).then_some(d.id)
    }

    /// Float tensor `id` (the output of node `id − 1`) now has shape `shape`: its node was
    /// changed to compute less (a recurrent layer's last step only).
    pub fn set_shape(&mut self, id: usize, shape: Vec<usize>) {
        self.nodes[id - 1].shape = shape.clone();
        self.shapes[id] = shape;
    }

    /// The node whose output input `i` of `node` is, if that node can absorb what `node` does:
    /// nothing else reads the tensor's data and it is not reshaped. Every name that holds the
    /// tensor counts (Identity, Dropout and reshapes hand it on under new names); each read name
    /// past the first came from a node that read another one, which is no reader of its own.
    pub fn fusable(&self, node: &NodeProto, i: usize, d: &Dyn) -> Option<usize> {
        node.input.get(i)?;
        let (names, reads) = self
            .values
            .iter()
            .filter(|(_, v)| matches!(v, Value::Dyn(e) if e.id == d.id))
            .filter_map(|(n, _)| self.readers.get(n).copied().filter(|&r| r > 0))
            .fold((0usize, 0usize), |(c, r), k| (c + 1, r + k));
        let single = reads.checked_sub(names.saturating_sub(1)) == Some(1);
        (single && d.id > 0 && d.order.is_none() && self.shapes[d.id] == d.shape).then(|| d.id - 1)
    }

    /// Ends the import at graph output `output`: drops nodes it does not need and renumbers.
    /// Returns the nodes and the output's batch axis.
    pub fn finish(mut self, output: &str) -> Result<(Vec<FloatNode>, Option<usize>), ImportError> {
        let d = match self.values.get(output) {
            Some(Value::Dyn(d)) => d.clone(),
            Some(Value::Const(_)) => {
                return Err(ImportError::Output(format!(
                    "'{output}' is a constant: it does not depend on the input"
                )))
            }
            None => return Err(ImportError::Output(format!("no node produces '{output}'"))),
        };
        let mut id = self.materialize(&NodeProto::new(), &d)?;
        if id == 0 {
            // The output is the input (an Identity graph): one no-op layer, as a model needs one.
            id = self
                .push(
                    "identity",
                    FloatOp::Reshape(d.shape.clone()),
                    vec![0],
                    d.shape.clone(),
                    d.batch,
                )
                .id;
        }
        let mut keep = vec![false; id + 1];
        keep[id] = true;
        for t in (1..=id).rev() {
            if keep[t] {
                for &i in &self.nodes[t - 1].inputs {
                    keep[i] = true;
                }
            }
        }
        let mut new_id = vec![0; id + 1];
        let mut nodes = Vec::new();
        for t in 1..=id {
            if keep[t] {
                let mut n = self.nodes[t - 1].clone();
                n.inputs.iter_mut().for_each(|i| *i = new_id[*i]);
                nodes.push(n);
                new_id[t] = nodes.len();
            }
        }
        Ok((nodes, d.batch))
    }
}

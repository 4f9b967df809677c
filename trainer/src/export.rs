//! Standard ONNX (opset 13, or 17 where LayerNormalization needs it; IR 8, a symbolic batch dimension `N`) written with onnx-protobuf,
//! so onnxruntime, ONNX's reference evaluator and `cwnn import` all load the same file.

use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension,
    tensor_shape_proto::Dimension, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

pub const OPSET: i64 = 13;
const IR_VERSION: i64 = 8;

/// A node attribute.
pub enum Attr {
    Int(&'static str, i64),
    Ints(&'static str, Vec<i64>),
    Float(&'static str, f32),
}

/// Collects nodes and initializers in order.
#[derive(Default)]
pub struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// [`OPSET`] unless set: LayerNormalization needs 17.
    opset: Option<i64>,
}

impl Graph {
    pub fn with_opset(opset: i64) -> Self {
        Graph {
            opset: Some(opset),
            ..Default::default()
        }
    }

    pub fn node(&mut self, op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<Attr>) {
        let attribute = attrs
            .into_iter()
            .map(|a| {
                let mut p = AttributeProto::new();
                match a {
                    Attr::Int(n, v) => {
                        p.name = n.into();
                        p.type_ = AttributeType::INT.into();
                        p.i = v;
                    }
                    Attr::Ints(n, v) => {
                        p.name = n.into();
                        p.type_ = AttributeType::INTS.into();
                        p.ints = v;
                    }
                    Attr::Float(n, v) => {
                        p.name = n.into();
                        p.type_ = AttributeType::FLOAT.into();
                        p.f = v;
                    }
                }
                p
            })
            .collect();
        self.nodes.push(NodeProto {
            op_type: op.into(),
            name: name.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute,
            ..Default::default()
        });
    }

    /// A float initializer, little-endian in `raw_data` as exporters write it.
    pub fn floats(&mut self, name: &str, dims: &[usize], data: &[f32]) {
        assert_eq!(dims.iter().product::<usize>(), data.len(), "initializer {name}");
        self.initializers.push(TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::FLOAT as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
    }

    /// An int64 initializer (axes, shapes).
    pub fn ints(&mut self, name: &str, data: &[i64]) {
        self.initializers.push(TensorProto {
            name: name.into(),
            dims: vec![data.len() as i64],
            data_type: DataType::INT64 as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
    }

    /// The model: one float input and one float output, batch dimension `N` first.
    pub fn finish(self, name: &str, input: (&str, &[usize]), output: (&str, &[usize])) -> ModelProto {
        let graph = GraphProto {
            name: name.into(),
            node: self.nodes,
            initializer: self.initializers,
            input: vec![value_info(input.0, input.1)],
            output: vec![value_info(output.0, output.1)],
            ..Default::default()
        };
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: self.opset.unwrap_or(OPSET),
                ..Default::default()
            }],
            producer_name: "cwnn-trainer".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(graph).into(),
            ..Default::default()
        }
    }
}

/// `[N, dims…]` float.
fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    let dim = std::iter::once(Dimension {
        value: Some(dimension::Value::DimParam("N".into())),
        ..Default::default()
    })
    .chain(dims.iter().map(|&d| Dimension {
        value: Some(dimension::Value::DimValue(d as i64)),
        ..Default::default()
    }))
    .collect();
    let tensor = type_proto::Tensor {
        elem_type: DataType::FLOAT as i32,
        shape: Some(TensorShapeProto {
            dim,
            ..Default::default()
        })
        .into(),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.into(),
        type_: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}

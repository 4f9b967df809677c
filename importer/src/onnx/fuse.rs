//! Decompositions that exporters write for one op, rewritten to that op before mapping:
//! - LayerNormalization as `ReduceMean, Sub, Pow 2, ReduceMean, Add ε, Sqrt, Div` (then
//!   `Mul γ`, `Add β`): PyTorch below opset 17, hand-written BERT-style LayerNorms; and as
//!   tf2onnx writes Keras' `x·g + (β − μ·g)` with `g = γ/√(σ² + ε)`, means by
//!   GlobalAveragePool;
//! - GELU as `x·0.5·(1 + erf(x/√2))` or `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`:
//!   PyTorch below opset 20, Hugging Face's `gelu_new`.
//!
//! Why: one layer instead of five to nine, so one rounding, one table and one layer's gas.
//! A decomposition is left alone (and maps op by op) when another node or the graph output
//! also reads one of its inner tensors, when its constants are not the op's, or when its
//! mean is not over the last axis alone.

use std::collections::{HashMap, HashSet};

use ndarray::ArrayD;
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::{AttributeProto, NodeProto};

use super::ops::constant_value;
use super::proto::Attrs;

/// `nodes` with every decomposition found replaced by its op, in place of its last node.
pub fn fuse(nodes: &[NodeProto], consts: &HashMap<String, ArrayD<f64>>, output: &str) -> Vec<NodeProto> {
    let g = Graph::new(nodes, consts, output);
    let mut fused: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    let mut gone: HashSet<usize> = HashSet::new();
    for i in 0..nodes.len() {
        let found = match nodes[i].op_type.as_str() {
            "ReduceMean" => g.layer_norm(i),
            "GlobalAveragePool" => g.layer_norm_scaled(i),
            "Erf" | "Tanh" => g.gelu(i),
            _ => None,
        };
        if let Some(Fused { parts, last, with }) = found {
            if parts.iter().any(|p| gone.contains(p)) {
                continue;
            }
            gone.extend(&parts);
            fused.insert(last, with);
        }
    }
    let mut out = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        match fused.remove(&i) {
            Some(with) => out.extend(with),
            None if !gone.contains(&i) => out.push(n.clone()),
            None => {}
        }
    }
    out
}

/// A match: the nodes it replaces, the last of them, and the nodes that take its place there.
struct Fused {
    parts: Vec<usize>,
    last: usize,
    with: Vec<NodeProto>,
}

struct Graph<'a> {
    nodes: &'a [NodeProto],
    consts: &'a HashMap<String, ArrayD<f64>>,
    producer: HashMap<&'a str, usize>,
    readers: HashMap<&'a str, Vec<usize>>,
    output: &'a str,
}

/// `a` within 10^-4 (relative) of `b`: exporters round constants to f32 or fewer digits.
fn near(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-4 * b.abs()
}

impl<'a> Graph<'a> {
    fn new(nodes: &'a [NodeProto], consts: &'a HashMap<String, ArrayD<f64>>, output: &'a str) -> Self {
        let mut producer = HashMap::new();
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            n.output.iter().for_each(|o| {
                producer.insert(o.as_str(), i);
            });
            n.input
                .iter()
                .filter(|s| !s.is_empty())
                .for_each(|s| readers.entry(s.as_str()).or_default().push(i));
        }
        Graph {
            nodes,
            consts,
            producer,
            readers,
            output,
        }
    }

    fn out(&self, i: usize) -> &'a str {
        self.nodes[i].output.first().map_or("", String::as_str)
    }

    /// The one node that reads node `i`'s output, if it is `op` and nothing else reads it.
    fn next(&self, i: usize, op: &str) -> Option<usize> {
        let name = self.out(i);
        match self.readers.get(name).map(Vec::as_slice) {
            Some(&[j]) if name != self.output && self.nodes[j].op_type == op => Some(j),
            _ => None,
        }
    }

    /// The node that computes `name`, if it is `op` and its output is read by `reader` alone.
    fn from(&self, name: &str, op: &str, reader: usize) -> Option<usize> {
        let i = *self.producer.get(name)?;
        (self.nodes[i].op_type == op && self.next(i, &self.nodes[reader].op_type) == Some(reader)).then_some(i)
    }

    /// An initializer's or a Constant node's value.
    fn constant(&self, name: &str) -> Option<ArrayD<f64>> {
        match self.consts.get(name) {
            Some(c) => Some(c.clone()),
            None => {
                let n = &self.nodes[*self.producer.get(name)?];
                (n.op_type == "Constant").then(|| constant_value(n).ok())?
            }
        }
    }

    /// A one-element constant.
    fn scalar(&self, name: &str) -> Option<f64> {
        let c = self.constant(name)?;
        (c.len() == 1).then(|| c.iter().next().copied())?
    }

    /// A binary node's other operand than `name`, in either order.
    fn other(&self, i: usize, name: &str) -> Option<&'a str> {
        match self.nodes[i].input.as_slice() {
            [a, b] if a == name => Some(b),
            [a, b] if b == name => Some(a),
            _ => None,
        }
    }

    /// Binary node `i` applied to `name` and a constant near `c`.
    fn with_const(&self, i: usize, name: &str, c: f64) -> bool {
        self.other(i, name)
            .and_then(|o| self.scalar(o))
            .is_some_and(|v| near(v, c))
    }

    /// ReduceMean `i` of `x` over the last axis, keeping it.
    fn last_axis_mean(&self, i: usize) -> bool {
        let n = &self.nodes[i];
        let a = Attrs::new(n);
        let axes = match n.input.get(1).filter(|s| !s.is_empty()) {
            Some(name) => self.constant(name).map(|c| c.iter().map(|&v| v as i64).collect()),
            None => a.ints("axes").ok().flatten(),
        };
        axes.as_deref() == Some(&[-1]) && a.int("keepdims", 1).ok() == Some(1)
    }

    /// Mean `m1` = ReduceMean(x) → Sub(x, m1) = d → Pow(d, 2) → ReduceMean → Add ε → Sqrt →
    /// Div(d, ·) → [Mul γ] → [Add β].
    fn layer_norm(&self, m1: usize) -> Option<Fused> {
        let x = self.nodes[m1].input.first()?.as_str();
        let sub = self.next(m1, "Sub")?;
        let d = self.out(sub);
        if !self.last_axis_mean(m1) || self.nodes[sub].input != [x, self.out(m1)] || d == self.output {
            return None;
        }
        let (pow, div) = match self.readers.get(d).map(Vec::as_slice)? {
            &[p, q] | &[q, p] if self.nodes[p].op_type == "Pow" && self.nodes[q].op_type == "Div" => (p, q),
            _ => return None,
        };
        let m2 = self.next(pow, "ReduceMean")?;
        let add = self.next(m2, "Add")?;
        let sqrt = self.next(add, "Sqrt")?;
        let eps = self.other(add, self.out(m2)).and_then(|e| self.scalar(e))?;
        let squares = self.nodes[pow].input.first().map(String::as_str) == Some(d)
            && self.with_const(pow, d, 2.0)
            && self.last_axis_mean(m2);
        if !squares || self.next(sqrt, "Div") != Some(div) || self.nodes[div].input != [d, self.out(sqrt)] {
            return None;
        }
        let mut parts = vec![m1, sub, pow, m2, add, sqrt, div];
        let scale = self.next(div, "Mul").and_then(|m| {
            let g = self.other(m, self.out(div))?;
            self.consts.contains_key(g).then_some((m, g))
        });
        let bias = scale.and_then(|(m, _)| {
            let a = self.next(m, "Add")?;
            let b = self.other(a, self.out(m))?;
            self.consts.contains_key(b).then_some((a, b))
        });
        parts.extend(scale.map(|s| s.0).into_iter().chain(bias.map(|b| b.0)));
        let last = *parts.last()?;
        let name = &self.nodes[m1].name;
        let mut with = Vec::new();
        let gamma = match scale {
            Some((_, g)) => g.to_string(),
            None => {
                let one = format!("{name}/scale_one");
                with.push(node(
                    "Constant",
                    &format!("{name} (γ = 1)"),
                    &[],
                    &one,
                    vec![float("value_float", 1.0)],
                ));
                one
            }
        };
        let mut inputs = vec![x, gamma.as_str()];
        inputs.extend(bias.map(|b| b.1));
        let attrs = vec![int("axis", -1), float("epsilon", eps as f32)];
        with.push(node(
            "LayerNormalization",
            &format!("{name} (LayerNormalization)"),
            &inputs,
            self.out(last),
            attrs,
        ));
        Some(Fused { parts, last, with })
    }

    /// tf2onnx's Keras LayerNormalization from mean `m1` = GlobalAveragePool(x) (over every
    /// axis after the first two): d = Sub(x, m1), Mul(d, d), GlobalAveragePool, Add ε, Sqrt,
    /// Reciprocal, g = Mul(·, γ); then y = Add(Mul(x, g), Sub(β, Mul(m1, g))).
    fn layer_norm_scaled(&self, m1: usize) -> Option<Fused> {
        let x = self.nodes[m1].input.first()?.as_str();
        let m = self.out(m1);
        let op = |i: usize| self.nodes[i].op_type.as_str();
        let readers = |name: &str| match name == self.output {
            true => &[][..],
            false => self.readers.get(name).map_or(&[][..], Vec::as_slice),
        };
        let (sub, mul_m) = match readers(m) {
            &[p, q] | &[q, p] if op(p) == "Sub" && op(q) == "Mul" => (p, q),
            _ => return None,
        };
        let d = self.out(sub);
        let sq = match readers(d) {
            &[a, b] if a == b && op(a) == "Mul" && self.nodes[a].input == [d, d] => a,
            _ => return None,
        };
        let m2 = self.next(sq, "GlobalAveragePool")?;
        let add = self.next(m2, "Add")?;
        let eps = self.other(add, self.out(m2)).and_then(|e| self.scalar(e))?;
        let sqrt = self.next(add, "Sqrt")?;
        let recip = self.next(sqrt, "Reciprocal")?;
        let mul_g = self.next(recip, "Mul")?;
        let gamma = self
            .other(mul_g, self.out(recip))
            .filter(|g| self.consts.contains_key(*g))?;
        let g = self.out(mul_g);
        let mul_x = match readers(g) {
            &[p, q] | &[q, p] if p == mul_m && op(q) == "Mul" => q,
            _ => return None,
        };
        let sub_b = self.next(mul_m, "Sub")?;
        let beta = self.nodes[sub_b].input.first().map(String::as_str);
        let beta = beta.filter(|b| self.consts.contains_key(*b) && self.nodes[sub_b].input[1] == self.out(mul_m))?;
        let add_y = self.next(mul_x, "Add")?;
        let shaped = self.nodes[sub].input == [x, m]
            && self.other(mul_m, g) == Some(m)
            && self.other(mul_x, g) == Some(x)
            && self.next(sub_b, "Add") == Some(add_y);
        if !shaped {
            return None;
        }
        // Topological order: the final Add, reading the others, comes last.
        let parts = vec![m1, sub, sq, m2, add, sqrt, recip, mul_g, mul_m, sub_b, mul_x, add_y];
        let attrs = vec![int("axis", 2), float("epsilon", eps as f32)];
        let name = format!("{} (LayerNormalization)", self.nodes[m1].name);
        let ln = node("LayerNormalization", &name, &[x, gamma, beta], self.out(add_y), attrs);
        Some(Fused {
            parts,
            last: add_y,
            with: vec![ln],
        })
    }

    /// Erf(x/√2) or Tanh(√(2/π)·(x + 0.044715·x³)) at node `f`, then `+ 1`, `·x` and `·0.5`.
    fn gelu(&self, f: usize) -> Option<Fused> {
        let arg = self.nodes[f].input.first()?.as_str();
        let (x, mut parts, approximate) = if self.nodes[f].op_type == "Erf" {
            let (x, s) = self.erf_argument(arg, f)?;
            (x, vec![s], "none")
        } else {
            let (x, inner) = self.tanh_argument(arg, f)?;
            (x, inner, "tanh")
        };
        parts.push(f);
        let plus = self.next(f, "Add")?;
        if !self.with_const(plus, self.out(f), 1.0) {
            return None;
        }
        let times = self.next(plus, "Mul")?;
        let other = self.other(times, self.out(plus))?;
        parts.extend([plus, times]);
        if other == x {
            // x·(1 + …), then ·0.5.
            let half = self.next(times, "Mul")?;
            self.with_const(half, self.out(times), 0.5).then(|| parts.push(half))?;
        } else {
            // (0.5·x)·(1 + …).
            let half = self.from(other, "Mul", times)?;
            (self.other(half, x).is_some() && self.with_const(half, x, 0.5)).then(|| parts.push(half))?;
        }
        let last = *parts.iter().max()?;
        let name = format!("{} (Gelu)", self.nodes[f].name);
        let gelu = node(
            "Gelu",
            &name,
            &[x],
            self.out(last),
            vec![string("approximate", approximate)],
        );
        Some(Fused {
            parts,
            last,
            with: vec![gelu],
        })
    }

    /// `arg` = x/√2 or x·(1/√2), read by `erf` alone: (x, that node).
    fn erf_argument(&self, arg: &str, erf: usize) -> Option<(&'a str, usize)> {
        let s = *self.producer.get(arg)?;
        let n = &self.nodes[s];
        let [a, b] = n.input.as_slice() else {
            return None;
        };
        // The operand that is not a constant; a Div divides by the constant.
        let x = if self.scalar(a).is_some() && n.op_type == "Mul" {
            b
        } else {
            a
        }
        .as_str();
        let scaled = match n.op_type.as_str() {
            "Div" => self.scalar(b).is_some_and(|v| near(v, 2f64.sqrt())),
            "Mul" => self.with_const(s, x, 0.5f64.sqrt()),
            _ => false,
        };
        (scaled && self.next(s, "Erf") == Some(erf)).then_some((x, s))
    }

    /// `arg` = √(2/π)·(x + 0.044715·x³), each step read by the next alone: (x, its nodes).
    fn tanh_argument(&self, arg: &str, tanh: usize) -> Option<(&'a str, Vec<usize>)> {
        let k = self.from(arg, "Mul", tanh)?;
        let (sum_name, c) = match self.nodes[k].input.as_slice() {
            [a, b] if self.scalar(b).is_some() => (a.as_str(), self.scalar(b)?),
            [a, b] => (b.as_str(), self.scalar(a)?),
            _ => return None,
        };
        let sum = self.from(sum_name, "Add", k)?;
        let [p, q] = self.nodes[sum].input.as_slice() else {
            return None;
        };
        // x + c·x³, in either order.
        let cubic = |x: &str, t: &str| {
            let m = self.from(t, "Mul", sum)?;
            let pow = self.nodes[m].input.iter().find_map(|s| self.from(s, "Pow", m))?;
            let cube = self.nodes[pow].input.first().map(String::as_str) == Some(x)
                && self.with_const(pow, x, 3.0)
                && self.with_const(m, self.out(pow), 0.044715);
            cube.then_some(vec![pow, m])
        };
        let (x, inner) = match cubic(p, q) {
            Some(inner) => (p.as_str(), inner),
            None => (q.as_str(), cubic(q, p)?),
        };
        near(c, (2.0 / std::f64::consts::PI).sqrt()).then(|| (x, [inner, vec![sum, k]].concat()))
    }
}

fn node(op: &str, name: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INT.into(),
        i,
        ..Default::default()
    }
}

fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::FLOAT.into(),
        f,
        ..Default::default()
    }
}

fn string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::STRING.into(),
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn scalar(v: f64) -> ArrayD<f64> {
        ArrayD::from_elem(IxDyn(&[]), v)
    }

    fn ops(nodes: &[NodeProto]) -> Vec<&str> {
        nodes.iter().map(|n| n.op_type.as_str()).collect()
    }

    /// `y = x·0.5·(1 + erf(x·s))`, the scale from a Constant node, `extra` read after.
    fn erf_form(s: f64, extra: Option<&str>) -> Vec<NodeProto> {
        let mut nodes = vec![
            node("Constant", "c", &[], "s", vec![float("value_float", s as f32)]),
            node("Mul", "scale", &["s", "x"], "a", vec![]),
            node("Erf", "erf", &["a"], "e", vec![]),
            node("Add", "plus", &["e", "one"], "e1", vec![]),
            node("Mul", "times", &["x", "e1"], "m", vec![]),
            node("Mul", "half", &["m", "half"], "y", vec![]),
        ];
        if let Some(t) = extra {
            nodes.push(node("Add", "other", &[t, "y"], "z", vec![]));
        }
        nodes
    }

    fn consts() -> HashMap<String, ArrayD<f64>> {
        [("one", 1.0), ("half", 0.5), ("two", 2.0), ("eps", 1e-6)]
            .into_iter()
            .map(|(n, v)| (n.to_string(), scalar(v)))
            .collect()
    }

    #[test]
    fn gelu_fuses_only_when_it_is_gelu_and_nothing_else_reads_inside() {
        let c = consts();
        let fused = fuse(&erf_form(0.5f64.sqrt(), None), &c, "y");
        assert_eq!(ops(&fused), ["Constant", "Gelu"]);
        assert_eq!(
            (fused[1].input.as_slice(), fused[1].output[0].as_str()),
            (&["x".to_string()][..], "y")
        );
        // Another reader of the Erf's output, the output itself being graph output, or a
        // scale that is not 1/√2: left as it is.
        for (nodes, out) in [
            (erf_form(0.5f64.sqrt(), Some("e")), "z"),
            (erf_form(0.5f64.sqrt(), None), "e1"),
            (erf_form(0.75, None), "y"),
        ] {
            assert_eq!(fuse(&nodes, &c, out), nodes, "{out}");
        }
    }

    /// LayerNorm without γ and β, over `axes`.
    fn norm_form(axes: i64) -> Vec<NodeProto> {
        let axes = || {
            vec![AttributeProto {
                name: "axes".into(),
                type_: AttributeType::INTS.into(),
                ints: vec![axes],
                ..Default::default()
            }]
        };
        vec![
            node("ReduceMean", "mean", &["x"], "mu", axes()),
            node("Sub", "centre", &["x", "mu"], "d", vec![]),
            node("Pow", "square", &["d", "two"], "d2", vec![]),
            node("ReduceMean", "var", &["d2"], "v", axes()),
            node("Add", "eps", &["v", "eps"], "ve", vec![]),
            node("Sqrt", "sqrt", &["ve"], "sd", vec![]),
            node("Div", "norm", &["d", "sd"], "y", vec![]),
        ]
    }

    #[test]
    fn layer_norm_fuses_over_the_last_axis_only() {
        let c = consts();
        let fused = fuse(&norm_form(-1), &c, "y");
        assert_eq!(ops(&fused), ["Constant", "LayerNormalization"]);
        let ln = &fused[1];
        assert_eq!(ln.input, [String::from("x"), fused[0].output[0].clone()]);
        let a = Attrs::new(ln);
        assert_eq!(
            (a.int("axis", 0).unwrap(), a.float("epsilon", 0.0).unwrap() as f32),
            (-1, 1e-6)
        );
        // A mean over another axis is not LayerNormalization's.
        assert_eq!(fuse(&norm_form(1), &c, "y"), norm_form(1));
    }

    /// tf2onnx's Keras LayerNormalization: `x·g + (β − μ·g)`, `g = γ/√(σ² + ε)`.
    fn keras_norm_form() -> Vec<NodeProto> {
        vec![
            node("GlobalAveragePool", "mean", &["x"], "mu", vec![]),
            node("Sub", "centre", &["x", "mu"], "d", vec![]),
            node("Mul", "square", &["d", "d"], "d2", vec![]),
            node("GlobalAveragePool", "var", &["d2"], "v", vec![]),
            node("Add", "eps", &["v", "eps"], "ve", vec![]),
            node("Sqrt", "sqrt", &["ve"], "sd", vec![]),
            node("Reciprocal", "inv", &["sd"], "r", vec![]),
            node("Mul", "gain", &["r", "gamma"], "g", vec![]),
            node("Mul", "mean_gain", &["mu", "g"], "mg", vec![]),
            node("Sub", "shift", &["beta", "mg"], "b", vec![]),
            node("Mul", "scaled", &["x", "g"], "xg", vec![]),
            node("Add", "y", &["xg", "b"], "y", vec![]),
        ]
    }

    #[test]
    fn keras_layer_norm_fuses_into_one_op_over_the_axes_after_the_first_two() {
        let mut c = consts();
        c.extend([("gamma", 1.5), ("beta", 0.25)].map(|(n, v)| (n.to_string(), scalar(v))));
        let fused = fuse(&keras_norm_form(), &c, "y");
        assert_eq!(ops(&fused), ["LayerNormalization"]);
        assert_eq!(
            (fused[0].input.as_slice(), fused[0].output[0].as_str()),
            (&["x", "gamma", "beta"].map(String::from)[..], "y")
        );
        let a = Attrs::new(&fused[0]);
        assert_eq!(
            (a.int("axis", 0).unwrap(), a.float("epsilon", 0.0).unwrap() as f32),
            (2, 1e-6)
        );
        // γ computed rather than constant, an inner tensor read by another node or being the
        // graph output, the mean subtracted the wrong way round: left as it is.
        let mut computed = c.clone();
        computed.remove("gamma");
        let mut read = keras_norm_form();
        read.push(node("Add", "other", &["g", "y"], "z", vec![]));
        let mut swapped = keras_norm_form();
        swapped[1].input = vec!["mu".into(), "x".into()];
        for (nodes, consts, out) in [
            (keras_norm_form(), &computed, "y"),
            (read, &c, "z"),
            (keras_norm_form(), &c, "r"),
            (swapped, &c, "y"),
        ] {
            assert_eq!(fuse(&nodes, consts, out), nodes, "{out}");
        }
    }
}

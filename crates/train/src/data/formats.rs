//! Parsing verified dataset bytes into a [`Table`] (CSV/TSV, safetensors, `.npy`) or into
//! token ids (a flat `u16`/`u32` array).

use candle_core::{DType, Device};

use super::Table;
use crate::{
    spec::{DatasetFormat, TokenDtype, CIFAR_RECORD},
    Error, Result,
};

/// Token ids stored as little-endian `dtype`s, each below `vocab_size`. A length that is not
/// a whole number of ids, or an id past the vocabulary (whose embedding row does not exist),
/// is the poster's error, named with its position.
pub fn parse_tokens(bytes: &[u8], dtype: TokenDtype, vocab_size: usize) -> Result<Vec<u32>> {
    let width = dtype.width();
    if !bytes.len().is_multiple_of(width) {
        return Err(Error::Format(format!(
            "tokens: {} bytes is not a whole number of {width}-byte ids",
            bytes.len()
        )));
    }
    let ids: Vec<u32> = match dtype {
        TokenDtype::U16 => bytes
            .chunks_exact(2)
            .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        TokenDtype::U32 => bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    };
    if let Some(i) = ids.iter().position(|&id| id as usize >= vocab_size) {
        return Err(Error::Format(format!(
            "tokens: id {} at position {i} is not below vocab_size {vocab_size}",
            ids[i]
        )));
    }
    Ok(ids)
}

pub fn parse_table(format: &DatasetFormat, bytes: &[u8]) -> Result<Table> {
    let mut table = match format {
        DatasetFormat::Csv {
            delimiter,
            header,
            label_column,
            ..
        } => parse_csv(bytes, *delimiter, *header, *label_column)?,
        DatasetFormat::Safetensors {
            features, labels, ..
        } => parse_safetensors(bytes, features, labels)?,
        DatasetFormat::Npy { .. } => parse_npy(bytes)?,
        DatasetFormat::Cifar { .. } => parse_cifar(bytes)?,
        DatasetFormat::Text | DatasetFormat::BpeText { .. } | DatasetFormat::Tokens { .. } => {
            return Err(Error::Format("a language corpus is not a table".into()))
        }
        DatasetFormat::Shards { .. } => {
            return Err(Error::Format("a shard index is not a table".into()))
        }
    };
    let scale = format.scale();
    if scale != 1.0 {
        table.features.iter_mut().for_each(|v| *v *= scale);
    }
    // NaN or infinite features (written as such, or a value past f32's range) make every
    // loss NaN: the dataset cannot be trained on.
    if let Some(i) = table.features.iter().position(|v| !v.is_finite()) {
        return Err(Error::Format(format!(
            "sample {}: a feature is not a finite number (after scaling)",
            i / table.dim.max(1)
        )));
    }
    Ok(table)
}

/// CIFAR-10's binary format: [`CIFAR_RECORD`]-byte records, a label byte then the pixels.
pub fn parse_cifar(bytes: &[u8]) -> Result<Table> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(CIFAR_RECORD) {
        return Err(Error::Format(format!(
            "cifar: {} bytes is not a whole number of {CIFAR_RECORD}-byte records (a label \
             byte and 3×32×32 pixels)",
            bytes.len()
        )));
    }
    let rows = bytes.len() / CIFAR_RECORD;
    let dim = CIFAR_RECORD - 1;
    let mut features = Vec::with_capacity(rows * dim);
    let mut labels = Vec::with_capacity(rows);
    for record in bytes.chunks_exact(CIFAR_RECORD) {
        labels.push(u32::from(record[0]));
        features.extend(record[1..].iter().map(|&b| f32::from(b)));
    }
    Ok(Table {
        features,
        labels,
        dim,
    })
}

fn label(v: f64, row: usize) -> Result<u32> {
    if v.fract() != 0.0 || !(0.0..=u32::MAX as f64).contains(&v) {
        return Err(Error::Format(format!(
            "row {row}: label {v} is not a non-negative integer"
        )));
    }
    Ok(v as u32)
}

pub fn parse_csv(bytes: &[u8], delimiter: char, header: bool, label_column: i64) -> Result<Table> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| Error::Format(format!("CSV is not UTF-8: {e}")))?;
    let mut features = Vec::new();
    let mut labels = Vec::new();
    let mut dim = None;
    for (n, line) in text.lines().enumerate().skip(header as usize) {
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(delimiter).map(str::trim).collect();
        let col = if label_column < 0 {
            cells.len() as i64 + label_column
        } else {
            label_column
        };
        if col < 0 || col as usize >= cells.len() {
            return Err(Error::Format(format!(
                "line {}: no column {label_column}",
                n + 1
            )));
        }
        let mut row = Vec::with_capacity(cells.len() - 1);
        for (i, cell) in cells.iter().enumerate() {
            let v: f64 = cell
                .parse()
                .map_err(|_| Error::Format(format!("line {}: `{cell}` is not a number", n + 1)))?;
            if i == col as usize {
                labels.push(label(v, n + 1)?);
            } else {
                row.push(v as f32);
            }
        }
        match dim {
            None => dim = Some(row.len()),
            Some(d) if d != row.len() => {
                return Err(Error::Format(format!(
                    "line {}: {} features, earlier rows have {d}",
                    n + 1,
                    row.len()
                )))
            }
            _ => {}
        }
        features.extend(row);
    }
    let dim = dim.ok_or_else(|| Error::Format("CSV has no rows".into()))?;
    Ok(Table {
        features,
        labels,
        dim,
    })
}

pub fn parse_safetensors(bytes: &[u8], features: &str, labels: &str) -> Result<Table> {
    let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)?;
    let get = |name: &str| {
        tensors.get(name).ok_or_else(|| {
            Error::Format(format!(
                "safetensors has no tensor `{name}` (has {:?})",
                tensors.keys().collect::<Vec<_>>()
            ))
        })
    };
    let x = get(features)?;
    let y = get(labels)?;
    if x.rank() < 2 || x.dims().contains(&0) {
        return Err(Error::Format(format!(
            "features `{features}` must be (samples, features…), not {:?}",
            x.dims()
        )));
    }
    let rows = x.dims()[0];
    if y.dims() != [rows] {
        return Err(Error::Format(format!(
            "labels shape {:?} does not match {rows} samples",
            y.dims()
        )));
    }
    let x = x.to_dtype(DType::F32)?.flatten_from(1)?;
    let dim = x.dims().get(1).copied().unwrap_or(0);
    let y: Vec<f32> = y.to_dtype(DType::F32)?.to_vec1()?;
    let labels = y
        .iter()
        .enumerate()
        .map(|(i, v)| label(*v as f64, i))
        .collect::<Result<_>>()?;
    Ok(Table {
        features: x.flatten_all()?.to_vec1()?,
        labels,
        dim,
    })
}

/// A 2-D little-endian `.npy` (`<f4`, `<f8`, `|u1`, `<i4`, `<i8`), C order; label last.
/// Every size in the header comes from a stranger: each is checked against the bytes there
/// are before anything is sliced or allocated.
pub fn parse_npy(bytes: &[u8]) -> Result<Table> {
    let bad = |m: &str| Error::Format(format!(".npy: {m}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("missing magic"));
    }
    let (hlen, start): (usize, usize) = match (bytes[6], bytes.get(8..12)) {
        (1, _) => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        (2 | 3, Some(len)) => (
            u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize,
            12,
        ),
        (v, _) => return Err(bad(&format!("version {v} not supported"))),
    };
    let end = start
        .checked_add(hlen)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| bad("header not UTF-8"))?;
    let field = |key: &str| {
        let i = header.find(key).ok_or_else(|| bad(&format!("no {key}")))?;
        Ok::<&str, Error>(header[i + key.len()..].trim_start_matches([':', ' ', '\'']))
    };
    let descr: String = field("'descr'")?
        .chars()
        .take_while(|c| *c != '\'')
        .collect();
    if field("'fortran_order'")?.starts_with("True") {
        return Err(bad("Fortran order not supported"));
    }
    let shape = parse_shape(field("'shape'")?).ok_or_else(|| bad("bad shape"))?;
    let [rows, cols] = shape[..] else {
        return Err(bad("need a 2-D array (samples, features + label)"));
    };
    if cols < 2 || rows == 0 {
        return Err(bad(
            "need at least one sample, one feature column and the label",
        ));
    }
    let data = &bytes[end..];
    let decode: fn(&[u8]) -> f64 = match descr.as_str() {
        "<f4" => |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
        "<f8" => |b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        "|u1" => |b| f64::from(b[0]),
        "<i4" => |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
        "<i8" => |b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f64,
        other => return Err(bad(&format!("dtype {other} not supported"))),
    };
    let width = match descr.as_str() {
        "|u1" => 1,
        "<f4" | "<i4" => 4,
        _ => 8,
    };
    // The header's shape must fit in the bytes there are: a lying shape is refused here,
    // before any buffer is sized from it.
    let row_bytes = cols
        .checked_mul(width)
        .ok_or_else(|| bad("shape too large"))?;
    let need = rows
        .checked_mul(row_bytes)
        .filter(|&n| n <= data.len())
        .ok_or_else(|| {
            bad(&format!(
                "shape ({rows}, {cols}) needs more than the {} data bytes there are",
                data.len()
            ))
        })?;
    let mut features = Vec::with_capacity(rows * (cols - 1));
    let mut labels = Vec::with_capacity(rows);
    for (r, row) in data[..need].chunks_exact(row_bytes).enumerate() {
        let mut values = row.chunks_exact(width).map(decode);
        features.extend(values.by_ref().take(cols - 1).map(|v| v as f32));
        let last = values.next().ok_or_else(|| bad("short row"))?;
        labels.push(label(last, r)?);
    }
    Ok(Table {
        features,
        labels,
        dim: cols - 1,
    })
}

/// `(2, 3), ...` → `[2, 3]`: the text after `'shape':` up to its closing parenthesis.
fn parse_shape(text: &str) -> Option<Vec<usize>> {
    let inner = text.strip_prefix('(')?;
    let inner = &inner[..inner.find(')')?];
    inner
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_header_label_first_and_tsv() {
        let t = parse_csv(b"label,a,b\n1,0.5,2\n0,1,3\n", ',', true, 0).unwrap();
        assert_eq!(
            (t.features, t.labels, t.dim),
            (vec![0.5, 2.0, 1.0, 3.0], vec![1, 0], 2)
        );
        let t = parse_csv(b"0.5\t2\t1\n", '\t', false, -1).unwrap();
        assert_eq!((t.features, t.labels), (vec![0.5, 2.0], vec![1]));
    }

    #[test]
    fn csv_errors_name_the_line() {
        let e = parse_csv(b"1,2,0\n1,x,0\n", ',', false, -1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("`x`"), "{e}");
        let e = parse_csv(b"1,2,0\n1,0\n", ',', false, -1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse_csv(b"1,2,0.5\n", ',', false, -1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("label"), "{e}");
    }

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend((header.len() as u16).to_le_bytes());
        v.extend(header.as_bytes());
        v.extend(data);
        v
    }

    #[test]
    fn npy_f4_and_u1() {
        let data: Vec<u8> = [1.5f32, 2.0, 1.0, 3.0, 4.0, 0.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let t = parse_npy(&npy("<f4", "(2, 3)", &data)).unwrap();
        assert_eq!(
            (t.features, t.labels, t.dim),
            (vec![1.5, 2.0, 3.0, 4.0], vec![1, 0], 2)
        );
        let t = parse_npy(&npy("|u1", "(1, 3)", &[7, 8, 2])).unwrap();
        assert_eq!((t.features, t.labels), (vec![7.0, 8.0], vec![2]));
        assert!(
            parse_npy(&npy("<f4", "(2, 3)", &data[..8])).is_err(),
            "truncated data"
        );
        assert!(
            parse_npy(&npy("<c8", "(1, 2)", &[0; 16])).is_err(),
            "unsupported dtype"
        );
    }
}

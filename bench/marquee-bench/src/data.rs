//! Loaders for the shared data sets and protocol folds, and the synthetic matrices (as `.npy`, so
//! the Python peers read the very same numbers).

use marquee_ml::als::Rating;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use std::io::{Read, Write};
use std::path::Path;

pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn read(path: &Path) -> Res<String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// ML-100K protocol fold: (train, test, n_users, n_items) with 0-based ids (`id - 1`).
pub fn movielens_fold(data: &Path, fold: u8) -> Res<(Vec<Rating>, Vec<Rating>, usize, usize)> {
    let ratings = read(&data.join("movielens_100k/ratings.csv"))?;
    let folds = read(&data.join("protocol/ml100k_fold_assignments.csv"))?;
    let fold_of: Vec<u8> =
        folds.lines().skip(1).map(|l| l.rsplit(',').next().unwrap_or("").trim().parse()).collect::<Result<_, _>>()?;
    let (mut train, mut test) = (Vec::new(), Vec::new());
    let (mut nu, mut ni) = (0usize, 0usize);
    for (row, line) in ratings.lines().skip(1).enumerate() {
        let mut f = line.split(',');
        let mut next = || f.next().ok_or("short ratings row");
        let u: u32 = next()?.parse()?;
        let i: u32 = next()?.parse()?;
        let v: f32 = next()?.parse()?;
        nu = nu.max(u as usize);
        ni = ni.max(i as usize);
        let r = Rating { user: u - 1, item: i - 1, value: v };
        if fold_of[row] == fold {
            test.push(r)
        } else {
            train.push(r)
        }
    }
    Ok((train, test, nu, ni))
}

/// The z_* columns of protocol/cdnow_customer_features.csv.
pub fn cdnow_z(data: &Path) -> Res<Array2<f64>> {
    let text = read(&data.join("protocol/cdnow_customer_features.csv"))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or("empty cdnow file")?.split(',').collect();
    let cols: Vec<usize> = (0..header.len()).filter(|&c| header[c].starts_with("z_")).collect();
    let mut flat = Vec::new();
    let mut n = 0;
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        for &c in &cols {
            flat.push(f[c].parse::<f64>()?);
        }
        n += 1;
    }
    Ok(Array2::from_shape_vec((n, cols.len()), flat)?)
}

/// Telco rows as raw strings, with the protocol fold of each row.
pub struct TelcoRows {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub fold: Vec<u8>,
}

pub fn telco(data: &Path) -> Res<TelcoRows> {
    let mut rdr = csv::Reader::from_path(data.join("telco_churn_ibm/wa_churn.csv"))?;
    let header = rdr.headers()?.iter().map(str::to_owned).collect();
    let rows = rdr.records().map(|r| r.map(|r| r.iter().map(str::to_owned).collect())).collect::<Result<_, _>>()?;
    let folds = read(&data.join("protocol/telco_fold_assignments.csv"))?;
    let fold =
        folds.lines().skip(1).map(|l| l.rsplit(',').next().unwrap_or("").trim().parse()).collect::<Result<_, _>>()?;
    Ok(TelcoRows { header, rows, fold })
}

/// IMDB 25K (texts, labels).
pub fn imdb(data: &Path) -> Res<(Vec<String>, Vec<bool>)> {
    let file = std::fs::File::open(data.join("imdb_reviews_25k/imdb_train_25k.csv.gz"))?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file).read_to_string(&mut text)?;
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let (mut docs, mut y) = (Vec::new(), Vec::new());
    for rec in rdr.records() {
        let rec = rec?;
        docs.push(rec[0].to_owned());
        y.push(&rec[1] == "1");
    }
    Ok((docs, y))
}

// ---- .npy (little-endian f64, C order) ----

pub fn write_npy(path: &Path, shape: &[usize], values: &[f64]) -> Res<()> {
    let shape_txt = match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_txt}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let tmp = path.with_extension("npy.tmp");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    for v in values {
        f.write_all(&v.to_le_bytes())?;
    }
    f.flush()?;
    drop(f);
    std::fs::rename(tmp, path)?;
    Ok(())
}

/// Reads an f64 `.npy` written by [`write_npy`]: (shape, values).
pub fn read_npy(path: &Path) -> Res<(Vec<usize>, Vec<f64>)> {
    let named = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(named)?);
    let mut preamble = [0u8; 10];
    file.read_exact(&mut preamble).map_err(named)?;
    let mut header = vec![0u8; u16::from_le_bytes([preamble[8], preamble[9]]) as usize];
    file.read_exact(&mut header).map_err(named)?;
    let header = std::str::from_utf8(&header)?;
    if !header.contains("'<f8'") {
        return Err(format!("{}: expected <f8", path.display()).into());
    }
    let s = header.find("'shape': (").ok_or("no shape")? + 10;
    let e = s + header[s..].find(')').ok_or("bad shape")?;
    let shape: Vec<usize> = header[s..e]
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse())
        .collect::<Result<_, _>>()?;
    // Straight into the f64 buffer, 64 KiB at a time: reading the whole file first would hold the
    // data twice and double the peak RSS the bench reports.
    let n: usize = shape.iter().product();
    let mut values = Vec::with_capacity(n);
    let mut buf = vec![0u8; 1 << 16];
    while values.len() < n {
        let take = ((n - values.len()) * 8).min(buf.len());
        file.read_exact(&mut buf[..take]).map_err(named)?;
        values.extend(buf[..take].chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))));
    }
    Ok((shape, values))
}

/// Synthetic k-means matrix: `n x d`, 8 Gaussian blobs (sd 1) around centres drawn in [-4, 4]^d.
pub fn synth_kmeans(n: usize, d: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<f64> = (0..8 * d).map(|_| rng.gen_range(-4.0..4.0)).collect();
    let n01 = Normal::new(0.0, 1.0).expect("sd 1");
    let mut out = Vec::with_capacity(n * d);
    for _ in 0..n {
        let c = rng.gen_range(0..8);
        for j in 0..d {
            out.push(centres[c * d + j] + n01.sample(&mut rng));
        }
    }
    out
}

/// Synthetic logistic data: `n x d` standard normal features (column j scaled by 1 + j/d), labels
/// drawn from a planted model. Returns (x, y as 0/1).
pub fn synth_logistic(n: usize, d: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n01 = Normal::new(0.0, 1.0).expect("sd 1");
    let coef: Vec<f64> = (0..d).map(|j| ((j * 7 % 11) as f64 / 10.0 - 0.5) / (1.0 + j as f64 / d as f64)).collect();
    let (mut x, mut y) = (Vec::with_capacity(n * d), Vec::with_capacity(n));
    for _ in 0..n {
        let mut z = -0.5;
        for (j, c) in coef.iter().enumerate() {
            let v = n01.sample(&mut rng) * (1.0 + j as f64 / d as f64);
            z += c * v;
            x.push(v);
        }
        let p = 1.0 / (1.0 + (-z).exp());
        y.push(if rng.gen_bool(p) { 1.0 } else { 0.0 });
    }
    (x, y)
}

/// Synthetic explicit ratings for the ALS scaling table: `n` ratings from a planted rank-5 model
/// over `n / 100` users and `n / 200` items (at least 50 each), values rounded and clamped to 1..5.
pub fn synth_ratings(n: usize, seed: u64) -> (Vec<Rating>, usize, usize) {
    // At least 5 cells per rating, else the rejection loop below cannot finish (10K ratings over
    // 100 x 50 users x items never did).
    let nu = (n / 100).max(50);
    let ni = (n / 200).max(50).max((5 * n).div_ceil(nu));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n01 = Normal::new(0.0f32, 1.0).expect("sd 1");
    let r = 5;
    let pu: Vec<f32> = (0..nu * r).map(|_| n01.sample(&mut rng) * 0.5).collect();
    let qi: Vec<f32> = (0..ni * r).map(|_| n01.sample(&mut rng) * 0.5).collect();
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let u = rng.gen_range(0..nu);
        let i = rng.gen_range(0..ni);
        if !seen.insert((u, i)) {
            continue;
        }
        let dot: f32 = (0..r).map(|f| pu[u * r + f] * qi[i * r + f]).sum();
        let v = (3.5 + dot + 0.5 * n01.sample(&mut rng)).round().clamp(1.0, 5.0);
        out.push(Rating { user: u as u32, item: i as u32, value: v });
    }
    (out, nu, ni)
}

//! Build script: stores the browser script's sources (`src/proxy/script/**/*.js`) gzip-compressed
//! in `OUT_DIR/script/`, where `proxy::script` embeds them (`include_bytes!`) and inflates them
//! once at first use. Every page still gets the same text; the binary carries a quarter of it
//! (the 6 MB budget, `BENCHMARKS.md`).

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use flate2::{Compression, write::GzEncoder};

fn main() {
    let src = Path::new("src/proxy/script");
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("script");
    println!("cargo:rerun-if-changed={}", src.display());
    compress_dir(src, &out);
}

fn compress_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create OUT_DIR/script");
    let mut entries: Vec<_> = fs::read_dir(from)
        .expect("read src/proxy/script")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().expect("file name").to_owned();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            compress_dir(&path, &to.join(&name));
        } else if path.extension().is_some_and(|e| e == "js") {
            println!("cargo:rerun-if-changed={}", path.display());
            let text = fs::read(&path).expect("read a script part");
            let mut gz = GzEncoder::new(Vec::new(), Compression::best());
            gz.write_all(&text).expect("gzip in memory");
            let mut file = name;
            file.push(".gz");
            fs::write(to.join(file), gz.finish().expect("gzip in memory")).expect("write .gz");
        }
    }
}

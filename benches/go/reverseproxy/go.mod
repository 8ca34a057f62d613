module agnt/benches/reverseproxy

go 1.19

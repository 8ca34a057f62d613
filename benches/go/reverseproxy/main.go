// Baseline for the agnt proxy benchmarks: Go's stdlib httputil.ReverseProxy.
//
// go build -o /tmp/goproxy ./benches/go/reverseproxy && /tmp/goproxy 127.0.0.1:8082 http://127.0.0.1:8080
package main

import (
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: reverseproxy LISTEN_ADDR TARGET_URL")
	}
	target, err := url.Parse(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// The default keeps only 2 idle upstream connections per host, which would make the
	// 64-connection runs measure connection setup; give it a pool like nginx's keepalive.
	proxy.Transport = &http.Transport{
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		DisableCompression:  true,
	}
	log.Fatal(http.ListenAndServe(os.Args[1], proxy))
}

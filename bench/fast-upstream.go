// A minimal, fast stand-in for Prometheus, for benchmarks only: every request gets the same
// small Prometheus JSON success, so a proxy's own cost is not hidden behind Prometheus's.
//
// One guard keeps it honest: a request whose query (query endpoints) or match[] (series and label
// endpoints) is missing or never mentions the tenant label is answered 400, so a system that forwards unenforced queries shows up as non-2xx
// responses in the benchmark instead of as a fast one.
//
// Build: go build -o fast-upstream bench/fast-upstream.go
// Run:   fast-upstream -listen 127.0.0.1:19480 -label namespace
package main

import (
	"flag"
	"log"
	"net/http"
	"strings"
	"time"
)

const answer = `{"status":"success","data":{"resultType":"vector","result":[` +
	`{"metric":{"__name__":"up","job":"api","namespace":"acme","pod":"api-0"},"value":[1700000000,"1"]},` +
	`{"metric":{"__name__":"up","job":"api","namespace":"acme","pod":"api-1"},"value":[1700000000,"1"]}]}}`

func main() {
	listen := flag.String("listen", "127.0.0.1:19480", "address to listen on (loopback)")
	label := flag.String("label", "namespace", "the tenant label every query or match[] must name")
	flag.Parse()

	body := []byte(answer)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		if !enforced(r, *label) {
			http.Error(w, "query or match[] without the tenant label", http.StatusBadRequest)
			return
		}
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	server := &http.Server{
		Addr:              *listen,
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	log.Fatal(server.ListenAndServe())
}

// enforced reports whether the request carries what its endpoint reads (query for the query
// endpoints, match[] for series and label endpoints) and every such value names the label.
func enforced(r *http.Request, label string) bool {
	key := "match[]"
	if strings.HasPrefix(r.URL.Path, "/api/v1/query") {
		key = "query"
	}
	values := r.Form[key]
	if len(values) == 0 {
		return false
	}
	for _, value := range values {
		if !strings.Contains(value, label) {
			return false
		}
	}
	return true
}

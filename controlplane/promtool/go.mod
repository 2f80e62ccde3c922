// Wrapper module: builds promtool from github.com/prometheus/prometheus through the Go module proxy, for
// `npm run test:monitoring` (promtool check/test rules). The binary is cached outside the repository.
module csp-operator.local/controlplane/promtool

go 1.26.0

require github.com/prometheus/prometheus v0.316.0

// Package cluster is the suite that runs several pinpipe processes, with
// different roles, against one replicated Kafka cluster and the real
// stores, and kills and restarts instances and a broker under load. It
// holds tests only, behind the build tag "cluster" (they stop a broker of
// the shared stack): go test -tags cluster -p 1 ./cluster/
package cluster

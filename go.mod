module github.com/cocaine-cloud/cocaine

go 1.26.8

require github.com/vmihailenco/msgpack/v5 v5.4.1

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/fsnotify/fsnotify v1.10.1 // indirect
	github.com/pebbe/zmq4 v1.4.0 // indirect
	github.com/robfig/cron/v3 v3.0.1 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
	go.mongodb.org/mongo-driver/v2 v2.10.0 // indirect
	golang.org/x/sys v0.13.0 // indirect
)

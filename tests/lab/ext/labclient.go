// One login with Go's go-sql-driver/mysql for the mysqlwire lab (tests/lab/extclients.py).
// Reads a LoginSpec as JSON on stdin, prints one LoginResult JSON line on stdout.
// TLS: a tls.Config registered as "lab" verifies the lab CA and writes the NSS key log
// (KeyLogWriter) to spec.keylog. Built with GOPATH=/usr/share/gocode GO111MODULE=off
// (Debian's golang-github-go-sql-driver-mysql-dev).
package main

import (
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

var driverVersion = "unknown" // set with -ldflags "-X main.driverVersion=..."

type spec struct {
	Host           string            `json:"host"`
	Port           int               `json:"port"`
	User           string            `json:"user"`
	Password       string            `json:"password"`
	Database       *string           `json:"database"`
	TLS            string            `json:"tls"`
	CA             *string           `json:"ca"`
	Keylog         *string           `json:"keylog"`
	SessionQueries bool              `json:"session_queries"`
	Timeout        float64           `json:"timeout"`
	Options        map[string]string `json:"options"`
}

type clientError struct {
	Cls      string  `json:"cls"`
	Message  string  `json:"message"`
	Code     *int    `json:"code"`
	Sqlstate *string `json:"sqlstate"`
}

type result struct {
	Client       string         `json:"client"`
	Version      string         `json:"version"`
	Connected    bool           `json:"connected"`
	Error        *clientError   `json:"error"`
	Session      map[string]any `json:"session"`
	CommandError *clientError   `json:"command_error"`
	ChangeUser   map[string]any `json:"change_user"`
	Elapsed      float64        `json:"elapsed"`
	Stderr       string         `json:"stderr"`
}

func toErr(err error) *clientError {
	e := &clientError{Cls: fmt.Sprintf("%T", err), Message: err.Error()}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		c := int(me.Number)
		e.Code = &c
		e.Cls = "MySQLError"
	}
	return e
}

func main() {
	res := result{Client: "go", Version: "go-sql-driver/mysql " + driverVersion}
	defer func() {
		out, _ := json.Marshal(res)
		fmt.Println(string(out))
	}()
	var s spec
	if err := json.NewDecoder(os.Stdin).Decode(&s); err != nil {
		res.Error = &clientError{Cls: "SpecError", Message: err.Error()}
		return
	}
	cfg := mysql.NewConfig()
	cfg.User = s.User
	cfg.Passwd = s.Password
	cfg.Net = "tcp"
	cfg.Addr = fmt.Sprintf("%s:%d", s.Host, s.Port)
	if s.Database != nil {
		cfg.DBName = *s.Database
	}
	cfg.Timeout = time.Duration(s.Timeout * float64(time.Second))
	cfg.ReadTimeout = cfg.Timeout
	cfg.WriteTimeout = cfg.Timeout
	for k, v := range s.Options {
		switch k {
		case "allowCleartextPasswords":
			cfg.AllowCleartextPasswords = v == "true"
		case "allowNativePasswords":
			cfg.AllowNativePasswords = v == "true"
		}
	}
	if s.TLS == "on" {
		pool := x509.NewCertPool()
		if s.CA != nil {
			pem, err := os.ReadFile(*s.CA)
			if err != nil {
				res.Error = &clientError{Cls: "SpecError", Message: err.Error()}
				return
			}
			pool.AppendCertsFromPEM(pem)
		}
		tc := &tls.Config{RootCAs: pool, ServerName: s.Host}
		if s.Keylog != nil {
			f, err := os.OpenFile(*s.Keylog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err == nil {
				defer f.Close()
				tc.KeyLogWriter = f
			}
		}
		mysql.RegisterTLSConfig("lab", tc)
		cfg.TLSConfig = "lab"
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		res.Error = toErr(err)
		return
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		res.Error = toErr(err)
		return
	}
	res.Connected = true
	if !s.SessionQueries {
		var one int
		if err := db.QueryRow("SELECT 1").Scan(&one); err != nil {
			res.CommandError = toErr(err)
		}
		return
	}
	var user string
	var dbname sql.NullString
	if err := db.QueryRow("SELECT CURRENT_USER(), DATABASE()").Scan(&user, &dbname); err != nil {
		res.CommandError = toErr(err)
		return
	}
	sess := map[string]any{"current_user": user, "database": nil}
	if dbname.Valid {
		sess["database"] = dbname.String
	}
	rows, err := db.Query("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_cipher', 'Compression')")
	if err != nil {
		res.CommandError = toErr(err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if rows.Scan(&k, &v) == nil {
			sess[strings.ToLower(k)] = v
		}
	}
	res.Session = sess
}

#!/usr/bin/perl
# One login with Perl DBI + DBD::MariaDB or DBD::mysql, for the mysqlwire lab.
# Usage: perl labclient.pl MariaDB|mysql < spec.json   (one LoginResult JSON line on stdout)
# Both link libmariadb (Debian): TLS key log through the LD_PRELOAD shim tests/lab/sslkeylog.c.
use strict;
use warnings;
use JSON::PP;
use DBI;

my $drv = $ARGV[0] || 'MariaDB';
my $p = $drv eq 'MariaDB' ? 'mariadb' : 'mysql';
my %res = (client => "perl-$drv", version => '', connected => JSON::PP::false, error => undef,
           session => undef, command_error => undef, change_user => undef, elapsed => 0,
           stderr => '');
sub finish { print JSON::PP->new->canonical->encode(\%res), "\n"; exit 0; }
my $spec = decode_json(do { local $/; <STDIN> });
eval "require DBD::$drv; 1" or do {
    $res{error} = {cls => 'ImportError', message => "$@", code => undef, sqlstate => undef};
    finish();
};
{
    no strict 'refs';
    my $v = ${"DBD::${drv}::VERSION"};
    $res{version} = "Perl DBD::$drv $v (DBI $DBI::VERSION)";
}
my $dsn = "DBI:$drv:host=$spec->{host};port=$spec->{port}";
$dsn .= ";database=$spec->{database}" if defined $spec->{database};
$dsn .= ";${p}_connect_timeout=" . int($spec->{timeout});
if ($spec->{tls} eq 'on') {
    $dsn .= ";${p}_ssl=1;${p}_ssl_ca_file=$spec->{ca};${p}_ssl_verify_server_cert=1";
}
my $opts = $spec->{options} || {};
$dsn .= ";$_=$opts->{$_}" for sort keys %$opts;
my $dbh = DBI->connect($dsn, $spec->{user}, $spec->{password},
                       {RaiseError => 0, PrintError => 0, AutoCommit => 1});
sub err_of {
    my ($h) = @_;
    my $code = $h ? $h->err : $DBI::err;
    my $msg = $h ? $h->errstr : $DBI::errstr;
    my $st = $h ? $h->state : $DBI::state;
    return {cls => 'DBI', message => defined $msg ? "$msg" : '', code => ($code ? int($code) : undef),
            sqlstate => ($st ? "$st" : undef)};
}
if (!$dbh) { $res{error} = err_of(undef); finish(); }
$res{connected} = JSON::PP::true;
if (!$spec->{session_queries}) {
    $dbh->selectall_arrayref('SELECT 1') or $res{command_error} = err_of($dbh);
} else {
    my $r = $dbh->selectall_arrayref('SELECT CURRENT_USER(), DATABASE()');
    if (!$r) { $res{command_error} = err_of($dbh); }
    else {
        my %s = (current_user => $r->[0][0], database => $r->[0][1]);
        my $st = $dbh->selectall_arrayref(
            "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_cipher', 'Compression')");
        if ($st) { $s{lc $_->[0]} = $_->[1] for @$st; $res{session} = \%s; }
        else { $res{command_error} = err_of($dbh); }
    }
}
$dbh->disconnect;
finish();

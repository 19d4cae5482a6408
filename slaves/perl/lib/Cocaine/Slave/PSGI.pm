package Cocaine::Slave::PSGI;
# Serving a PSGI app (Plack, Dancer2, Mojolicious::Lite's to_psgi_app...)
# on HTTP events, unchanged. The request arrives in the HTTP payload
# (slaves/python/README.md#http-payload): a MessagePack map {meta, body},
# then raw body chunks; the answer is a map {code, headers}, then raw body
# chunks. The environ follows the WSGI table of that README, with psgi.*
# keys in place of wsgi.*.
use strict;
use warnings;
use Data::MessagePack;
use Plack::Util ();

sub new {
    my ($class, $file) = @_;
    my $app = Plack::Util::load_psgi($file);
    die "args.psgi: $file does not return a code ref (a PSGI app)\n" unless ref $app eq 'CODE';
    bless { app => $app }, $class;
}

sub serve {
    my ($self, $req, $resp) = @_;
    my ($meta, $body) = read_head($req);
    $req->_unread($body);
    my $env = environ($meta, $req);
    my $res = $self->{app}->($env);
    if (ref $res eq 'CODE') {    # delayed response and streaming body
        my $done = 0;
        $res->(sub {
            my $r = shift;
            write_head($resp, $r->[0], $r->[1]);
            if (@$r > 2) {
                write_body($resp, $r->[2]);
                $done = 1;
                return;
            }
            return Cocaine::Slave::PSGI::Writer->new($resp, \$done);
        });
        return;
    }
    die "PSGI app returned " . (ref $res || 'a non-reference') . ", not an array ref\n" unless ref $res eq 'ARRAY';
    write_head($resp, $res->[0], $res->[1]);
    write_body($resp, $res->[2]);
}

sub write_body {
    my ($resp, $body) = @_;
    if (ref $body eq 'ARRAY') {    # complete: one write with the end
        $resp->write($_) for @$body;
        return;
    }
    # A file handle or an object with getline: stream it.
    while (defined(my $line = $body->getline)) {
        next unless length $line;
        $resp->write($line);
        $resp->flush;
    }
    $body->close;
}

# read_head reads the {meta, body} map at the start of the stream: the
# first chunk normally, but it may be split, and bytes after it are body.
sub read_head {
    my $req = shift;
    my $up = Data::MessagePack::Unpacker->new;
    my $seen = '';
    while (defined(my $c = $req->next_chunk)) {
        $seen .= $c;
        my $off = eval { $up->execute($seen, 0) };
        die Cocaine::Error->new(400, "malformed HTTP request head: $@") unless defined $off;
        next unless $up->is_finished;
        my $head = $up->data;
        die Cocaine::Error->new(400, 'HTTP request head must be a map with a meta map')
            unless ref $head eq 'HASH' && ref $head->{meta} eq 'HASH';
        return ($head->{meta}, ($head->{body} // '') . substr($seen, $off));
    }
    die Cocaine::Error->new(400, 'HTTP request without its head');
}

sub _hostport {
    my $s = shift // '';
    return ($1, $2 // '') if $s =~ /\A\[([^\]]*)\](?::(\d*))?\z/;
    return ($1, $2) if $s =~ /\A([^:]*):([^:]*)\z/;
    return ($s, '');
}

sub _unquote { my $s = shift; $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge; $s }

sub environ {
    my ($meta, $req) = @_;
    my $secure = $meta->{secure} ? 1 : 0;
    my $path   = $meta->{path} // '/';
    my $query  = $meta->{query} // '';
    my ($script, $info) = exists $meta->{script_name} || exists $meta->{path_info}
        ? ($meta->{script_name} // '', $meta->{path_info} // '') : ('', $path);
    $script =~ s{/+\z}{};
    $info = "/$info" if length $info && $info !~ m{\A/};
    $info = '/' if !length $script && !length $info;
    my ($sname, $sport) = _hostport($meta->{host});
    my ($raddr, $rport) = _hostport($meta->{remote_addr});
    my %env = (
        REQUEST_METHOD  => $meta->{method} // 'GET',
        SCRIPT_NAME     => _unquote($script),
        PATH_INFO       => _unquote($info),
        QUERY_STRING    => $query,
        REQUEST_URI     => $path . (length $query ? "?$query" : ''),
        SERVER_NAME     => length $sname ? $sname : 'localhost',
        SERVER_PORT     => length $sport ? $sport : ($secure ? 443 : 80),
        SERVER_PROTOCOL => $meta->{protocol} // 'HTTP/1.1',
        'psgi.version'      => [1, 1],
        'psgi.url_scheme'   => $secure ? 'https' : 'http',
        'psgi.input'        => Cocaine::Slave::PSGI::Input->new($req),
        'psgi.errors'       => *STDERR{IO},
        'psgi.multithread'  => 0,
        'psgi.multiprocess' => 1,
        'psgi.run_once'     => 0,
        'psgi.nonblocking'  => 0,
        'psgi.streaming'    => 1,
        'psgix.input.buffered' => 0,
        'cocaine.meta'      => $meta,
        'cocaine.request'   => $req,
    );
    $env{REMOTE_ADDR} = $raddr if length $raddr;
    $env{REMOTE_PORT} = $rport if length $rport;
    $env{HTTPS} = 'on' if $secure;
    my $headers = $meta->{headers};
    if (ref $headers eq 'HASH') {
        for my $name (sort keys %$headers) {
            # "X_Forwarded_For" would pass for X-Forwarded-For once mapped
            # to a key: such names are dropped, as nginx does.
            next if $name =~ /_/;
            my $key = uc $name;
            $key =~ tr/-/_/;
            my $v = $headers->{$name};
            my @vals = grep { defined && !ref } (ref $v eq 'ARRAY' ? @$v : ($v));
            next unless @vals;
            if ($key eq 'CONTENT_TYPE' || $key eq 'CONTENT_LENGTH') {
                $env{$key} = $vals[0];
                next;
            }
            $env{"HTTP_$key"} = join($key eq 'COOKIE' ? '; ' : ',', @vals);
        }
    }
    $env{HTTP_HOST} = $meta->{host} if defined $meta->{host} && length $meta->{host};
    return \%env;
}

# write_head sends {code, headers} as a chunk of its own; it leaves with
# the first flush or the end.
sub write_head {
    my ($resp, $status, $headers) = @_;
    die "PSGI status must be a number, not " . ($status // 'undef') . "\n" unless defined $status && $status =~ /\A\d{3}\z/;
    my @h = @{ $headers // [] };
    my $out = "\x82" . Cocaine::Slave::_str('code') . Cocaine::Slave::_uint($status) . Cocaine::Slave::_str('headers');
    my $n = int(@h / 2);
    $out .= $n < 16 ? pack('C', 0x90 | $n) : pack('Cn', 0xdc, $n);
    for (my $i = 0; $i + 1 < @h; $i += 2) {
        $out .= "\x92" . Cocaine::Slave::_str($h[$i]) . Cocaine::Slave::_str($h[$i + 1]);
    }
    $resp->write($out);
    $resp->_end_chunk;
}

package Cocaine::Slave::PSGI::Input;
# psgi.input: reads block until the body arrives and end with it.
sub new { my ($class, $req) = @_; bless { req => $req }, $class }

sub read {
    my $self = shift;
    my $len = $_[1];
    my $off = $_[2] // 0;
    my $data = $self->{req}->read($len);
    $_[0] = '' unless defined $_[0];
    substr($_[0], $off) = $data;
    return length $data;
}
sub seek  { 0 }
sub close { 1 }

package Cocaine::Slave::PSGI::Writer;
# The writer of a streaming PSGI answer: each write leaves at once.
sub new { my ($class, $resp, $done) = @_; bless { resp => $resp, done => $done }, $class }
sub write {
    my ($self, $data) = @_;
    return unless defined $data && length $data;
    $self->{resp}->write($data);
    $self->{resp}->flush;
}
sub close { ${ $_[0]{done} } = 1 }

1;

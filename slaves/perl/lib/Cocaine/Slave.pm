package Cocaine::Slave;
# The slave's protocol loop (docs/protocol.md) for Perl apps.
#
# Sessions run one at a time on the main thread. The request body is read
# from the socket as the handler asks for it, so a handler streams; frames
# of other sessions wait in their requests meanwhile. Heartbeats leave from
# a thread of their own, so a handler busy for long never looks dead;
# writes share one lock, so frames never interleave.
use strict;
use warnings;
use threads;
use threads::shared;
use Errno qw(EINTR EAGAIN);
use IO::Select;
use IO::Socket::UNIX;
use JSON::PP ();
use POSIX ();
use Socket qw(SOCK_STREAM);
use Time::HiRes ();
use Data::MessagePack;

use Cocaine::Slave::Stream;

use constant {
    HANDSHAKE => 1, HEARTBEAT => 2, TERMINATE => 3, INVOKE => 4, CHUNK => 5, ERROR => 6, CHOKE => 7,
    VERSION   => 1,
    MAX_FRAME => 8 << 20,
    CHUNK_SIZE => 1 << 20,
    MAX_MESSAGE => 300,
    # Request body read from the socket that no handler has taken yet:
    # past this, only a handler waiting for input reads more, so a body
    # nobody reads waits in the socket (the engine's writes then wait).
    MAX_UNREAD => 8 << 20,
};
my %ARITY = (1 => 5, 2 => 2, 3 => 3, 4 => 3, 5 => 3, 6 => 4, 7 => 2);

my $WLOCK : shared;
my $STARTED : shared = 0;    # the handshake is out: heartbeats may follow
my $sock;
my $rbuf = '';
my %sessions;    # session -> Cocaine::Slave::Request
my @queue;       # sessions invoked, not yet served
my $terminating = 0;

sub logmsg { print STDERR "cocaine: $_[0]\n" }

# ---- encoding (by hand: frames use uint, str and bin only) --------------

sub _uint {
    my $v = shift;
    return pack('C', $v) if $v < 128;
    return pack('CC', 0xcc, $v) if $v <= 0xff;
    return pack('Cn', 0xcd, $v) if $v <= 0xffff;
    return pack('CN', 0xce, $v) if $v <= 0xffffffff;
    return pack('CQ>', 0xcf, $v);
}

sub _str {
    my $s = shift;
    utf8::encode($s) if utf8::is_utf8($s);
    my $n = length $s;
    return pack('C', 0xa0 | $n) . $s if $n < 32;
    return pack('CC', 0xd9, $n) . $s if $n <= 0xff;
    return pack('Cn', 0xda, $n) . $s if $n <= 0xffff;
    return pack('CN', 0xdb, $n) . $s;
}

sub _frame { my $p = shift; pack('N', length $p) . $p }

sub frame_chunks {
    my ($session, $data) = @_;
    my $out = '';
    for (my $off = 0; $off < length $data; $off += CHUNK_SIZE) {
        my $piece = substr($data, $off, CHUNK_SIZE);
        $out .= _frame("\x93" . _uint(CHUNK) . _uint($session) . pack('CN', 0xc6, length $piece) . $piece);
    }
    return $out;
}
sub frame_choke { _frame("\x92" . _uint(CHOKE) . _uint($_[0])) }
sub frame_error { _frame("\x94" . _uint(ERROR) . _uint($_[0]) . _uint($_[1]) . _str($_[2])) }
sub frame_terminate { _frame("\x93" . _uint(TERMINATE) . "\x00" . _str($_[0])) }

# send writes bytes whole under the write lock.
sub send_bytes {
    my $data = shift;
    lock($WLOCK);
    my $off = 0;
    while ($off < length $data) {
        my $w = syswrite($sock, $data, length($data) - $off, $off);
        if (!defined $w) {
            next if $! == EINTR;
            die "cocaine: writing to the engine: $!\n";
        }
        $off += $w;
    }
    return 1;
}

# ---- reading -----------------------------------------------------------

sub unread {
    my $n = 0;
    $n += $_->{size} for values %sessions;
    return $n;
}

# pump reads and routes one frame; it waits up to $timeout seconds
# (undef: forever) and returns false when none came. Without $want_input
# (a handler sleeping rather than reading) it reads nothing more once
# MAX_UNREAD bytes of body wait for handlers.
sub pump {
    my ($timeout, $want_input) = @_;
    if (!$want_input && defined $timeout && unread() > MAX_UNREAD) {
        Time::HiRes::sleep($timeout) if $timeout > 0;
        return 0;
    }
    while (1) {
        if (length($rbuf) >= 4) {
            my $n = unpack('N', $rbuf);
            gone("a frame of $n bytes declared, limit " . MAX_FRAME) if $n > MAX_FRAME;
            if (length($rbuf) >= 4 + $n) {
                my $payload = substr($rbuf, 4, $n);
                substr($rbuf, 0, 4 + $n, '');
                route($payload);
                return 1;
            }
        }
        if (defined $timeout) {
            # A timeout of 0 still looks at the socket once, without waiting.
            my $t0 = Time::HiRes::time();
            my $ready = IO::Select->new($sock)->can_read($timeout > 0 ? $timeout : 0);
            $timeout -= Time::HiRes::time() - $t0;
            if (!$ready) {
                return 0 if $timeout <= 0;
                next;
            }
        }
        my $r = sysread($sock, $rbuf, 1 << 20, length $rbuf);
        if (!defined $r) {
            next if $! == EINTR || $! == EAGAIN;
            gone("reading from the engine: $!");
        }
        gone('engine closed the connection') if $r == 0;
    }
}

# poll routes the frames already waiting, without blocking: a handler that
# only writes learns this way that the engine cancelled its session, so its
# next write dies instead of streaming on until the engine kills the slave.
sub poll { 1 while pump(0) }

sub route {
    my $payload = shift;
    my $f = eval { Data::MessagePack->unpack($payload) };
    gone("bad MessagePack from the engine: $@") unless ref $f eq 'ARRAY' && @$f >= 2;
    my ($kind, $session) = @$f;
    gone("frame type $kind with " . scalar(@$f) . ' elements') unless ($ARITY{$kind} // -1) == @$f;
    if ($kind == INVOKE) {
        $sessions{$session} = Cocaine::Slave::Request->new($f->[2], $session);
        push @queue, $session;
    } elsif ($kind == TERMINATE) {
        $terminating = 1;
    } elsif (my $req = $sessions{$session}) {
        if ($kind == CHUNK) { $req->_push($f->[2]) }
        elsif ($kind == CHOKE) { $req->_finish }
        elsif ($kind == ERROR) { $req->_cancel("$f->[2] $f->[3]") }
    }
}

# gone leaves at once: nobody will read the answers.
sub gone {
    logmsg(shift);
    STDOUT->flush;
    STDERR->flush;
    POSIX::_exit(1);
}

# ---- serving -----------------------------------------------------------

sub serve {
    my ($dispatch, $session) = @_;
    my $req = $sessions{$session};
    my $resp = Cocaine::Slave::Response->new($session, $req);
    my $ok = eval { $dispatch->($req, $resp); $resp->close; 1 };
    if (!$ok) {
        my $e = $@;
        if ($req->cancelled) {
            $resp->_fail(520, 'cancelled');    # the engine ignores it; the session must end
        } elsif (ref $e && eval { $e->isa('Cocaine::Error') }) {
            $resp->_fail($e->code, $e->message);
        } else {
            my $msg = ref $e ? "$e" : $e;
            print STDERR "cocaine: handler of \"", $req->event, "\" failed: $msg";
            print STDERR "\n" unless $msg =~ /\n\z/;
            $resp->_fail(502, short($msg));
        }
    }
    delete $sessions{$session};
}

# short is the message for the caller: the first line, without "at FILE
# line N." (that stays in the log).
sub short {
    my $m = shift // 'error';
    $m =~ s/\n.*//s;
    $m =~ s/ at \S+ line \d+\.?\z//;
    $m = 'error' if $m eq '';
    return length $m <= MAX_MESSAGE ? $m : substr($m, 0, MAX_MESSAGE - 3) . '...';
}

sub heartbeat_thread {
    my ($fd, $period) = @_;
    open(my $out, '>&=', $fd) or return;
    my $beat = _frame("\x92" . _uint(HEARTBEAT) . "\x00");
    {
        lock($STARTED);
        cond_wait($STARTED) until $STARTED;
    }
    while (1) {
        Time::HiRes::sleep($period);
        lock($WLOCK);
        syswrite($out, $beat) or return;
    }
}

sub main {
    STDOUT->autoflush(1);
    STDERR->autoflush(1);
    my ($path, $id) = @ENV{qw(COCAINE_SOCKET COCAINE_SLAVE_ID)};
    unless ($path && $id) {
        logmsg('COCAINE_SOCKET and COCAINE_SLAVE_ID must be set: a cocaine engine starts this program');
        return 2;
    }
    my $period = ($ENV{COCAINE_HEARTBEAT_MS} // '') =~ /^\d+$/ && $ENV{COCAINE_HEARTBEAT_MS} > 0 ? $ENV{COCAINE_HEARTBEAT_MS} / 1000 : 5;
    $SIG{PIPE} = 'IGNORE';

    $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $path);
    unless ($sock) {
        logmsg("connect to the engine at $path: $!");
        return 1;
    }
    binmode $sock;
    # The thread starts before the app loads: a thread clones the
    # interpreter, and a small one clones fast and safely.
    threads->create(\&heartbeat_thread, fileno($sock), $period)->detach;

    require Cocaine::Slave::App;
    my $dispatch = eval { Cocaine::Slave::App::load('.') };
    if (!$dispatch) {
        # Before the handshake: the engine counts a failed start and keeps
        # this output as the crash log.
        my $e = $@;
        print STDERR $e =~ /^manifest\.json/ ? "cocaine: $e" : "cocaine: cannot load the app: $e";
        STDERR->flush;
        POSIX::_exit($e =~ /^manifest\.json/ ? 2 : 1);
    }
    send_bytes(_frame("\x95" . _uint(HANDSHAKE) . "\x00" . _str($id) . _uint($$) . _uint(VERSION)));
    {
        lock($STARTED);
        $STARTED = 1;
        cond_signal($STARTED);
    }

    my $ok = eval {
        while (1) {
            if (@queue) {
                serve($dispatch, shift @queue);
            } elsif ($terminating) {
                send_bytes(frame_terminate('terminated by engine'));
                last;
            } else {
                pump(undef);
            }
        }
        1;
    };
    if (!$ok) {
        logmsg("$@");
        STDOUT->flush;
        STDERR->flush;
        POSIX::_exit(1);
    }
    STDOUT->flush;
    STDERR->flush;
    POSIX::_exit(0);    # the heartbeat thread is not joined
}

1;

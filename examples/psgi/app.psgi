# A PSGI app, unchanged: the perl sandbox serves it as Plack's servers do.
# Through the front, its paths live under /psgi/http:
#
#   curl 'http://127.0.0.1:8080/psgi/http/hello/ann?greeting=hi' -H 'Cookie: visits=3'
#   curl -d '{"numbers": [1, 2, 3]}' -H 'Content-Type: application/json' http://127.0.0.1:8080/psgi/http/sum
use strict;
use warnings;
use Digest::SHA ();
use JSON::PP ();
use Plack::Request;
use Time::HiRes ();

my $json = JSON::PP->new->canonical;

sub json_response {
    my ($data, @headers) = @_;
    return [200, ['Content-Type' => 'application/json', @headers], [$json->encode($data)]];
}

my $app = sub {
    my $req  = Plack::Request->new(shift);
    my $path = $req->path_info;

    # A path parameter, a query parameter and a cookie.
    if ($req->method eq 'GET' && $path =~ m{\A/hello/([^/]+)\z}) {
        return json_response({ hello => $1, greeting => $req->query_parameters->{greeting} // 'hello',
            visits => $req->cookies->{visits} });
    }
    # A JSON body in, a cookie and JSON out.
    if ($req->method eq 'POST' && $path eq '/sum') {
        my $body = eval { $json->decode($req->content) } || {};
        my @numbers = ref $body->{numbers} eq 'ARRAY' ? @{ $body->{numbers} } : ();
        my $sum = 0;
        $sum += $_ for @numbers;
        return json_response({ sum => $sum }, 'Set-Cookie' => 'last=' . scalar(@numbers) . '; Path=/');
    }
    # A body of any size and bytes, read as it streams in: its length and hash.
    if ($req->method eq 'POST' && $path eq '/upload') {
        my $sha = Digest::SHA->new(256);
        my ($bytes, $buf) = (0, '');
        while (my $n = $req->env->{'psgi.input'}->read($buf, 65536)) {
            $bytes += $n;
            $sha->add($buf);
        }
        return json_response({ bytes => $bytes, sha256 => $sha->hexdigest });
    }
    # A streamed answer: each part leaves when written. ?gate=FILE makes
    # part 1 wait for that file (tests prove part 0 came while the app ran).
    if ($path eq '/stream') {
        my $gate = $req->query_parameters->{gate};
        return sub {
            my $w = shift->([200, ['Content-Type' => 'text/plain']]);
            for my $i (0 .. 2) {
                $w->write("part $i\n");
                if ($i == 0 && $gate) {
                    for (my $waited = 0; !-e $gate && $waited < 60000; $waited += 10) { Time::HiRes::sleep(0.01) }
                } elsif ($i < 2 && !$gate) {
                    Time::HiRes::sleep(0.3);
                }
            }
            $w->close;
        };
    }
    # ?ms=N answers after N ms; &marks=DIR leaves a file named for this
    # process's pid there (tests kill the slave that runs the request).
    if ($path eq '/slow') {
        if (my $dir = $req->query_parameters->{marks}) {
            open(my $mark, '>', "$dir/$$") or die "cannot leave a mark in $dir: $!\n";
            close $mark;
        }
        Time::HiRes::sleep(($req->query_parameters->{ms} || 1000) / 1000);
        return [200, ['Content-Type' => 'text/plain'], ['slept']];
    }
    die "the PSGI app failed on purpose\n" if $path eq '/fail';
    return [404, ['Content-Type' => 'text/plain'], ['not found']];
};

package Cocaine::Slave::App;
# Loading an app from its package and routing events to its handlers.
use strict;
use warnings;
use B ();
use File::Spec ();
use JSON::PP ();

# load reads manifest.json in $root and returns dispatch($req, $resp). Its
# errors (die) say what is wrong; the caller logs them before exiting.
sub load {
    my $root = shift;
    my $m = eval {
        open(my $fh, '<:raw', "$root/manifest.json") or die "$!\n";
        local $/;
        JSON::PP->new->decode(scalar <$fh>);
    };
    die "manifest.json: cannot read it: $@" unless ref $m eq 'HASH';
    my $type = $m->{type} // 'perl';
    die "manifest.json: type is \"$type\", this runtime serves \"perl\"\n" unless $type eq 'perl';
    my $args = $m->{args} // {};
    die "manifest.json: args must be an object\n" unless ref $args eq 'HASH';
    my ($module, $psgi) = @$args{qw(module psgi)};
    die "manifest.json: args.module (a package of handlers) or args.psgi (a PSGI app file) is required\n"
        unless defined $module || defined $psgi;
    die "manifest.json: args.module must be a package name such as \"MyApp::Handlers\"\n"
        if defined $module && $module !~ /\A[A-Za-z_]\w*(?:::\w+)*\z/;
    die "manifest.json: args.psgi must be a file inside the package such as \"app.psgi\"\n"
        if defined $psgi && (ref $psgi || $psgi eq '' || File::Spec->file_name_is_absolute($psgi) || $psgi =~ m{(?:\A|/)\.\.(?:/|\z)});

    # The package comes first: its modules win over installed ones.
    my $abs = File::Spec->rel2abs($root);
    unshift @INC, "$abs/lib", $abs;

    if (defined $module) {
        (my $file = "$module.pm") =~ s{::}{/}g;
        require $file;
    }
    my $http;
    if (defined $psgi) {
        require Cocaine::Slave::PSGI;
        $http = Cocaine::Slave::PSGI->new("$abs/$psgi");
    }
    return sub {
        my ($req, $resp) = @_;
        my $h = defined $module ? lookup($module, $req->event) : undef;
        if (!$h) {
            die Cocaine::Error->new(404, 'no handler for event "' . $req->event . '"') unless $http;
            return $http->serve($req, $resp);
        }
        respond($resp, $h->($req, $resp));
    };
}

# lookup finds the sub of an event in the package: "stream-upper" is
# stream_upper. Only subs defined in the package itself count, so an
# imported helper (croak, encode_json) never becomes an event.
sub lookup {
    my ($module, $event) = @_;
    (my $name = $event) =~ tr/-./__/;
    return undef unless $name =~ /\A[A-Za-z]\w*\z/;
    my $code = do { no strict 'refs'; defined &{"${module}::$name"} ? \&{"${module}::$name"} : undef };
    return undef unless $code;
    my $gv = B::svref_2object($code)->GV;
    return undef unless $gv->isa('B::GV') && $gv->STASH->NAME eq $module;
    return $code;
}

# respond writes what a handler returned: a string, an array ref of
# strings, or nothing (the handler wrote its answer itself).
sub respond {
    my ($resp, @result) = @_;
    return unless @result == 1 && defined $result[0];
    my $r = $result[0];
    if (ref $r eq 'ARRAY') { $resp->write($_) for @$r; return }
    die "handler returned a " . ref($r) . " reference; return a string, an array ref of strings, or nothing\n" if ref $r;
    $resp->write($r);
}

1;

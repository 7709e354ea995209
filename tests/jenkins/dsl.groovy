// Runs a declarative Jenkinsfile against recording stand-ins for the pipeline DSL (no Jenkins):
// every DSL call is printed as `stage<TAB>step<TAB>first argument` (one line), every block is
// run, a stage whose `when { expression { … } }` is false is skipped (as Declarative does), and
// the variables the file sets are printed at the end, so tests/jenkinsfile.rs can check what
// each stage does. Usage: groovy dsl.groovy JENKINSFILE clean|destructive [ACTION] — whether the
// plan's grep for replace/destroy changes finds some (ACTION: the schedule job's parameter);
// every other `sh` answers 0, or with `returnStdout` a stand-in digest. `input` is recorded with
// its submitter; `agent none` is the top-level agent's argument; what `environment` sets is
// also in `env`, as in Jenkins.
import org.codehaus.groovy.control.CompilerConfiguration

class SkipStage extends RuntimeException {}

abstract class Recorder extends Script {
    List<String> stages = []

    def methodMissing(String name, Object args) {
        Object[] a = args as Object[]
        def first = a.find { !(it instanceof Closure) }
        if (first instanceof Map) {
            first = name == 'input' ? "${first.message} submitter=${first.submitter}"
                : first.script ?: first.message ?: first.time ?: first.testResults ?: first.artifacts ?: first
        }
        String where = stages ? stages.last() : '-'
        println "${where}\t${name}\t${String.valueOf(first).replace('\n', ' ')}"
        def body = a.find { it instanceof Closure }
        switch (name) {
            case 'stage':
                stages << first
                try { body.call() } catch (SkipStage e) { println "${first}\tskipped\t" }
                finally { stages.remove(stages.size() - 1) }
                return null
            case 'environment':
                body.call()
                binding.variables.each { k, v -> if (k != 'env' && v instanceof String) binding.env[k] = v }
                return null
            case 'expression':
                if (!body.call()) throw new SkipStage()
                return true
            case 'sh':
                if (a[0] instanceof Map && a[0].returnStdout) return 'f00d' * 16
                boolean destroys = String.valueOf(first).contains('"action":"(replace|destroy)"')
                return destroys && binding.mode != 'destructive' ? 1 : 0
            default:
                return body ? body.call() : null
        }
    }
}

def config = new CompilerConfiguration()
config.scriptBaseClass = Recorder.name
def binding = new Binding([env: [:], params: [JEEVES_URL: '', ACTION: args.length > 2 ? args[2] : 'by-time'],
                           BUILD_NUMBER: '7', WORKSPACE: '/ws', mode: args[1], none: 'none'])
new GroovyShell(this.class.classLoader, binding, config).parse(new File(args[0])).run()
binding.variables.each { k, v -> println "-\tvariable\t${k}=${v}" }

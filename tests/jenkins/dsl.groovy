// Runs a declarative Jenkinsfile against recording stand-ins for the pipeline DSL (no Jenkins):
// every DSL call is printed as `stage<TAB>step<TAB>first argument` (one line), every block is
// run, a stage whose `when { expression { … } }` is false is skipped (as Declarative does), and
// the variables the file sets are printed at the end, so tests/jenkinsfile.rs can check what
// each stage does. Usage: groovy dsl.groovy JENKINSFILE clean|destructive — whether the plan's
// grep for replace/destroy changes finds some; every other `sh` answers 0.
import org.codehaus.groovy.control.CompilerConfiguration

class SkipStage extends RuntimeException {}

abstract class Recorder extends Script {
    List<String> stages = []

    def methodMissing(String name, Object args) {
        Object[] a = args as Object[]
        def first = a.find { !(it instanceof Closure) }
        if (first instanceof Map) {
            first = first.script ?: first.message ?: first.time ?: first.testResults ?: first.artifacts ?: first
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
            case 'expression':
                if (!body.call()) throw new SkipStage()
                return true
            case 'sh':
                boolean destroys = String.valueOf(first).contains('"action":"(replace|destroy)"')
                return destroys && binding.mode != 'destructive' ? 1 : 0
            default:
                return body ? body.call() : null
        }
    }
}

def config = new CompilerConfiguration()
config.scriptBaseClass = Recorder.name
def binding = new Binding([env: [:], params: [JEEVES_URL: ''], BUILD_NUMBER: '7',
                           WORKSPACE: '/ws', mode: args[1]])
new GroovyShell(this.class.classLoader, binding, config).parse(new File(args[0])).run()
binding.variables.each { k, v -> println "-\tvariable\t${k}=${v}" }
